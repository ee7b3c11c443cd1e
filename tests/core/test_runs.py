"""Run records: every prune and finetune is recorded; a killed finetune can be resumed exactly."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import finetune_recipe, prune_to, tiny_cnn, tiny_splits

from prunetui.core.runs import RunStore, fingerprint
from prunetui.core.session import Origin, Session
from prunetui.errors import UserError
from prunetui.workflow import steps

TESTS = Path(__file__).parents[1]


def open_session(workdir, shuffle=True) -> Session:
    origin = Origin(data_spec="tiny", checkpoint="tiny.pt")
    return Session(tiny_cnn(), tiny_splits(shuffle=shuffle), "tiny", origin, RunStore(workdir))


def test_prune_is_recorded_with_its_accuracy(tmp_path):
    session = open_session(tmp_path)
    session.evaluate()
    session.set_target("3.weight", 0.8)
    prune_to(session, name="first")
    before = session.measured_before()
    [run] = session.runs()
    assert run.kind == "prune" and run.status == "finished" and run.name == "first"
    assert run.profile == {"3.weight": 0.8}
    assert run.accuracy_before == before and run.accuracy_dense == session.dense_accuracy
    assert run.sparse_size_mib == session.current_size() < run.dense_size_mib
    assert run.data == "tiny" and run.checkpoint == "tiny.pt"
    assert (tmp_path / ".prunetui" / "runs" / f"{run.id}.json").is_file()


def test_finetune_continues_the_prune_run(tmp_path):
    session = open_session(tmp_path)
    session.set_target("3.weight", 0.8)
    prune_to(session, name="p")
    session.measured_before()
    result = steps.finetune(session, finetune_recipe(epochs=2), steps.say_nothing).result
    prune_run, ft_run = session.runs()
    assert ft_run.parent == prune_run.id and ft_run.kind == "finetune" and ft_run.name == "p+ft2"
    assert ft_run.status == "finished" and ft_run.resume_file is None
    assert [e["epoch"] for e in ft_run.epochs] == [1, 2]
    assert ft_run.accuracy_after == result.best_accuracy
    assert ft_run.accuracy_before == prune_run.accuracy_before
    assert not list((tmp_path / ".prunetui" / "runs").glob("*.pt"))  # finished: nothing to resume


def test_runs_of_another_model_are_not_shown(tmp_path):
    session = open_session(tmp_path)
    session.prune()
    other = Session(torch.nn.Sequential(torch.nn.Linear(3, 2)), store=RunStore(tmp_path))
    other.prune()
    assert len(session.runs()) == 1 and len(other.runs()) == 1
    assert len(RunStore(tmp_path).load_all()) == 2


def test_unreadable_record_is_skipped(tmp_path):
    session = open_session(tmp_path)
    session.prune()
    garbage = tmp_path / ".prunetui" / "runs" / "garbage.json"
    garbage.write_text("{not json")
    assert len(session.runs()) == 1
    assert session.recorder.store.unreadable == [garbage]


def test_fingerprint_follows_the_weights():
    a, b = tiny_cnn(), tiny_cnn()
    assert fingerprint(a.state_dict()) == fingerprint(b.state_dict())
    with torch.no_grad():
        b[0].weight[0, 0, 0, 0] += 1e-6
    assert fingerprint(a.state_dict()) != fingerprint(b.state_dict())


KILLED_RUN = """
import os, signal, sys
sys.path[:0] = [{tests!r}, {tests_root!r}]
from test_runs import open_session
from conftest import finetune_recipe, prune_to
from prunetui.core.events import EpochEnd

session = open_session({workdir!r})
session.set_target("3.weight", 0.7)
prune_to(session, name="killed")

def report(event):
    if isinstance(event, EpochEnd) and event.epoch == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # like a closed SSH session taking the process down

session.finetune(finetune_recipe(epochs=3, lr=0.05), report)
"""


def test_killed_finetune_leaves_an_unfinished_run_that_resumes_exactly(tmp_path):
    script = textwrap.dedent(
        KILLED_RUN.format(tests=str(TESTS / "core"), tests_root=str(TESTS), workdir=str(tmp_path))
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr

    session = open_session(tmp_path)  # shuffled: the resumed epoch draws as the run would have
    run = next(r for r in session.runs() if r.kind == "finetune")
    assert run.status == "unfinished" and [e["epoch"] for e in run.epochs] == [1, 2]
    assert run.resume_file and (tmp_path / ".prunetui" / "runs" / run.resume_file).is_file()
    result = steps.resume(session, run.id, steps.say_nothing).result
    assert [e.epoch for e in result.epochs] == [1, 2, 3]

    straight = open_session(tmp_path / "straight")
    straight.set_target("3.weight", 0.7)
    straight.prune()
    expected = straight.finetune(finetune_recipe(epochs=3, lr=0.05))
    assert [e.accuracy for e in result.epochs] == [e.accuracy for e in expected.epochs]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(session.model.state_dict()[key], value), key
    resumed = next(r for r in session.runs() if r.id == run.id)
    assert resumed.status == "finished" and resumed.resume_file is None
    record = json.loads((tmp_path / ".prunetui" / "runs" / f"{run.id}.json").read_text())
    assert len(record["epochs"]) == 3


def test_resume_refuses_a_finished_or_unknown_run(tmp_path):
    session = open_session(tmp_path)
    prune_to(session, name="done")
    with pytest.raises(UserError, match="nothing to resume"):
        session.resume(session.runs()[0].id)
    with pytest.raises(UserError, match="no run"):
        session.resume("nope")


def test_a_full_disk_while_recording_is_a_clear_error_and_keeps_the_old_record(tmp_path, monkeypatch):
    session = open_session(tmp_path)
    prune_to(session, name="kept")
    [run] = session.runs()

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    run.name = "changed"
    with pytest.raises(UserError, match="cannot save run state .*No space left"):
        session.recorder.store.save(run)
    monkeypatch.undo()
    assert [r.name for r in session.runs()] == ["kept"]
