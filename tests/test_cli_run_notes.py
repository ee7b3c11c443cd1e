"""`prunetui runs --json` rows carry the run's name, note and where its pruning started."""

import json
from pathlib import Path

import pytest

from prunetui.cli import main
from prunetui.core.runs import RunStore

GENTLE = str(Path(__file__).parents[1] / "profiles" / "demo-gentle.toml")


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_runs_rows_carry_name_note_and_start(capsys, tmp_path):
    assert main(["prune", "--profile", GENTLE, "--json"]) == 0
    capsys.readouterr()
    store = RunStore(tmp_path)
    [record] = store.load_all()
    record.name, record.note = "gentle-first", "conv4..7 only"
    store.save(record)
    assert main(["runs", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["runs"]
    assert (row["name"], row["note"], row["start"]) == ("gentle-first", "conv4..7 only", "dense")
    assert main(["runs"]) == 0
    assert "1: conv4..7 only" in capsys.readouterr().out


def test_the_shipped_profiles_are_package_data():
    import prunetui

    shipped = Path(prunetui.__file__).parent / "profiles"
    assert {p.name for p in shipped.glob("*.toml")} >= {"demo-gentle.toml", "vgg-cifar-run5.toml"}
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"profiles/*.toml"' in pyproject
