"""One thread policy for both front ends (issue 25): --threads N or PRUNETUI_THREADS, applied where both
open a session, recorded in every run; bad values are one error line."""

import json

import pytest
import torch
from conftest import run_json

from prunetui.cli import main


@pytest.fixture(autouse=True)
def threads_put_back():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_reach_the_run_and_its_timing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.toml").write_text('name = "p"\n[sparsity]\n"backbone.conv3.weight" = 0.7\n')
    out, _ = run_json(capsys, "prune", "--profile", "p.toml", "--threads", "1")
    assert out["latency_threads"] == 1 and torch.get_num_threads() == 1
    [record] = [json.loads(p.read_text()) for p in (tmp_path / ".prunetui" / "runs").glob("*.json")]
    assert record["environment"]["threads"] == 1


def test_the_environment_sets_them_when_the_flag_does_not(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRUNETUI_THREADS", "1")
    run_json(capsys, "info")
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    "argv, env, source", [(["--threads", "0"], None, "--threads"), ([], "two", "PRUNETUI_THREADS")]
)
def test_a_bad_count_is_one_error_line(capsys, monkeypatch, argv, env, source):
    if env is not None:
        monkeypatch.setenv("PRUNETUI_THREADS", env)
    assert main(["info", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {source} must be a whole number of threads") and len(err.splitlines()) == 1
