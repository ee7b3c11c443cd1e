"""Where run records and scan caches live: `.prunetui/` in the working directory, `--state-dir DIR`, or
PRUNETUI_STATE_DIR; a read-only working directory is one error line naming the folder and the way out."""

from pathlib import Path

import pytest
from conftest import run_json
from disks import read_only_folder

from prunetui.cli import main
from prunetui.core.runs import STATE_DIR_ENV, state_folder

PROFILE = 'name = "p"\n[sparsity]\n"backbone.conv3.weight" = 0.5\n'


def test_the_option_wins_over_the_environment_which_wins_over_the_default(tmp_path):
    env = {STATE_DIR_ENV: "/from/env"}
    assert state_folder("/opt", tmp_path, env) == Path("/opt")
    assert state_folder(None, tmp_path, env) == Path("/from/env")
    assert state_folder(None, tmp_path, {STATE_DIR_ENV: ""}) == tmp_path / ".prunetui"
    assert state_folder(None, tmp_path, {}) == tmp_path / ".prunetui"


def test_runs_and_scans_go_where_the_option_or_the_environment_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    Path("p.toml").write_text(PROFILE)
    run_json(capsys, "prune", "--profile", "p.toml", "--state-dir", "elsewhere")
    run_json(capsys, "scan", "--layers", "conv3", "--sparsities", "0.5", "--state-dir", "elsewhere")
    assert not Path(".prunetui").exists()
    assert len(list(Path("elsewhere/runs").glob("*.json"))) == 1
    assert len(list(Path("elsewhere/scans").glob("*.json"))) == 1
    assert len(run_json(capsys, "runs", "--state-dir", "elsewhere")[0]["runs"]) == 1

    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "from-env"))
    run_json(capsys, "prune", "--profile", "p.toml")
    assert len(list((tmp_path / "from-env/runs").glob("*.json"))) == 1
    assert len(run_json(capsys, "runs")[0]["runs"]) == 1  # the environment's, not elsewhere's
    assert not Path(".prunetui").exists()


def test_a_read_only_working_directory_names_the_folder_and_the_option(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    with read_only_folder(tmp_path) as folder:
        monkeypatch.chdir(folder)
        assert main(["prune", "--profile", "profile.toml", "--json"]) == 2
        captured = capsys.readouterr()
        [line] = [line for line in captured.err.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: cannot write run records in {folder / '.prunetui'}: ")
        assert line.endswith(
            "; keep run records and caches elsewhere with --state-dir DIR (or PRUNETUI_STATE_DIR=DIR)"
        )
        assert captured.out == "" and "Traceback" not in captured.err
        # a scan still works: its cache only saves time, and it is skipped
        run_json(capsys, "scan", "--layers", "conv3", "--sparsities", "0.5")
        # the way out the line gives
        state = tmp_path / "state"
        out = run_json(capsys, "prune", "--profile", "profile.toml", "--state-dir", str(state))[0]
        assert out["profile"] == "p" and len(list((state / "runs").glob("*.json"))) == 1
        assert sorted(p.name for p in folder.iterdir()) in (["profile.toml"], [".prunetui", "profile.toml"])


@pytest.mark.parametrize("where", ["state-dir is a file", "state-dir under a file"])
def test_a_state_dir_that_is_not_a_folder_is_one_line(tmp_path, monkeypatch, capsys, where):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    Path("p.toml").write_text(PROFILE)
    Path("file").write_text("x")
    state = "file" if where == "state-dir is a file" else "file/state"
    assert main(["prune", "--profile", "p.toml", "--state-dir", state]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"error: cannot write run records in {state}: ")
    assert err[-1].endswith("--state-dir DIR (or PRUNETUI_STATE_DIR=DIR)")
