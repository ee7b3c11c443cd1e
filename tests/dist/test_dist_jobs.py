"""Finetune and scan as torchrun jobs: 2 local processes on CPU with gloo, against the in-process engine.

Tolerance (also in the README): over the same global batches, a 2-process finetune ends within 1e-5
(absolute) of the 1-process one on every parameter and buffer, and its accuracies within one evaluation
image. They are not bit-equal because the sums run in another order: gradients are averaged across the
ranks, and batch-norm statistics are combined from each rank's half of the batch.
"""

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from prunetui.cli import main
from prunetui.core.events import EpochEnd, Progress
from prunetui.core.finetune import FinetuneSettings
from prunetui.core.profile import load_profile
from prunetui.core.runs import RunStore
from prunetui.core.session import Origin, Session, Splits
from prunetui.errors import JobFailed
from prunetui.sources import load_data, load_model

PROFILES = Path(__file__).parents[2] / "profiles"
EPOCH_LINE = re.compile(r"^ *Epoch (\d+) Accuracy \d+\.\d\d% / Best Accuracy: \d+\.\d\d%$")
IMAGES = 1344  # digits' train split cut to a multiple of the global batch's halves: no padded images
WEIGHT_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory) -> Path:
    images, labels = load_data("digits").train.dataset.tensors
    path = tmp_path_factory.mktemp("data") / "digits.pt"
    torch.save({"images": images[:IMAGES].clone(), "labels": labels[:IMAGES].clone()}, path)
    return path


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def pruned_session(digits_file: Path, workdir: Path) -> Session:
    """The demo pruned hard, on digits in a fixed order, so both engines see the same global batches."""
    spec = f"tensor:{digits_file}"
    model, label = load_model("demo")
    data = load_data(spec)
    train = DataLoader(data.train.dataset, batch_size=128, shuffle=False)
    session = Session(model, Splits(train, data.eval), label, Origin(data_spec=spec), RunStore(workdir))
    session.apply_profile(load_profile(PROFILES / "demo-aggressive.toml"))
    session.prune()
    session.evaluate()
    return session


def masked_weights_are_zero(session: Session) -> bool:
    params = dict(session.model.named_parameters())
    return all(torch.all(params[name][~mask] == 0) for name, mask in session.masks.items())


def state_of(session: Session) -> dict:
    return {k: v.clone() for k, v in session.model.state_dict().items()}


def test_two_processes_match_one_over_the_same_global_batches(digits_file, tmp_path):
    settings = FinetuneSettings(epochs=2)
    single = pruned_session(digits_file, tmp_path / "single")
    expected = single.finetune(settings)
    events = []
    double = pruned_session(digits_file, tmp_path / "double")
    result = double.finetune(settings, events.append, nproc=2)

    one_image = 100.0 / IMAGES
    assert [e.epoch for e in result.epochs] == [1, 2] and result.best_epoch == expected.best_epoch
    for got, want in zip(result.epochs, expected.epochs, strict=True):
        assert abs(got.accuracy - want.accuracy) <= one_image + 1e-9
    want_state = single.model.state_dict()
    for name, tensor in double.model.state_dict().items():
        difference = (tensor.double() - want_state[name].double()).abs().max().item()
        assert difference < WEIGHT_TOLERANCE, name
    assert masked_weights_are_zero(double)
    assert [e for e in events if isinstance(e, EpochEnd)] == result.epochs
    assert any(isinstance(e, Progress) and e.stage == "train epoch 2" for e in events)
    [_, run_one] = single.runs()
    [_, run_two] = double.runs()
    assert (
        run_two.status == "finished" and run_two.resume_file is None and run_two.parent == double.runs()[0].id
    )
    assert [e["epoch"] for e in run_two.epochs] == [e["epoch"] for e in run_one.epochs]
    assert run_two.accuracy_after == double.accuracy == result.best_accuracy


def test_scan_over_two_processes_equals_the_in_process_grid(capsys):
    argv = ["scan", "--sparsities", "0.5,0.9", "--json"]
    assert main(argv) == 0
    local, local_err = capsys.readouterr()
    assert main([*argv, "--nproc", "2"]) == 0
    split, split_err = capsys.readouterr()
    local, split = json.loads(local), json.loads(split)
    assert split["layers"] == local["layers"] and list(split["layers"]) == list(local["layers"])
    assert split["dense_accuracy"] == local["dense_accuracy"]
    assert set(split) == set(local)
    assert split_err.splitlines()[:-1] == local_err.splitlines()[:-1]  # the same rows in the same order
    assert split_err.splitlines()[-1].startswith("Scan finished in")


def test_prune_finetune_on_two_processes_from_the_command_line(capsys):
    profile = str(PROFILES / "demo-gentle.toml")
    assert main(["prune", "--profile", profile, "--finetune", "2", "--nproc", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    assert doc["accuracy_after"] == max(e["accuracy"] for e in doc["epochs"])
    assert doc["accuracy_after"] > doc["accuracy_before"] - 1.0
    assert all(layer["sparsity"] >= layer["target"] - 0.01 for layer in doc["layers"])
    epoch_lines = [line for line in err.splitlines() if EPOCH_LINE.match(line)]
    assert len(epoch_lines) == 2


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def job_processes() -> dict[int, str]:
    """torchrun (this process's child) and its ranks: pid -> RANK ('' for torchrun)."""
    found = {}
    for torchrun in children(os.getpid()):
        found[torchrun] = ""
        for worker in children(torchrun):
            environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
            found[worker] = next((v[5:].decode() for v in environ if v.startswith(b"RANK=")), "")
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_cancel_stops_every_process_and_keeps_the_best_epoch(digits_file, tmp_path):
    session = pruned_session(digits_file, tmp_path)
    cancel, seen, cancelled_at = threading.Event(), {}, []

    def report(event):
        if isinstance(event, Progress) and event.stage == "train epoch 2" and not cancel.is_set():
            seen.update(job_processes())
            cancelled_at.append(time.perf_counter())
            cancel.set()

    result = session.finetune(FinetuneSettings(epochs=3), report, cancel, nproc=2)
    assert time.perf_counter() - cancelled_at[0] < 5.0
    assert {"", "0", "1"} <= set(seen.values())  # torchrun and both ranks were seen, and are gone
    assert not [pid for pid in seen if alive(pid)]
    assert result.cancelled and result.completed == 1
    [_, run] = session.runs()
    assert run.status == "cancelled" and len(run.epochs) == 1
    best = torch.load(tmp_path / ".prunetui" / "runs" / run.resume_file, weights_only=True)["best_model"]
    assert all(torch.equal(v, best[k]) for k, v in session.model.state_dict().items())
    assert masked_weights_are_zero(session)
    assert session.accuracy == result.best_accuracy


def test_a_killed_rank_fails_the_job_and_the_best_epoch_is_kept_and_resumable(digits_file, tmp_path):
    session = pruned_session(digits_file, tmp_path)
    killed = []

    def report(event):
        if isinstance(event, EpochEnd) and not killed:
            [rank1] = [pid for pid, rank in job_processes().items() if rank == "1"]
            os.kill(rank1, signal.SIGKILL)
            killed.append(rank1)

    with pytest.raises(JobFailed, match=r"rank 1 died \(killed by SIGKILL\)") as failure:
        session.finetune(FinetuneSettings(epochs=3), report, nproc=2)
    [_, run] = session.runs()
    assert f"kept the best of {len(run.epochs)} completed epochs" in str(failure.value)
    assert run.status == "failed" and "rank 1" in run.error and len(run.epochs) >= 1
    best = torch.load(tmp_path / ".prunetui" / "runs" / run.resume_file, weights_only=True)["best_model"]
    assert all(torch.equal(v, best[k]) for k, v in session.model.state_dict().items())
    assert masked_weights_are_zero(session)

    result = session.resume(run.id, nproc=2)
    assert [e.epoch for e in result.epochs] == [1, 2, 3] and not result.cancelled
    [_, run] = session.runs()
    assert run.status == "finished" and len(run.epochs) == 3 and run.resume_file is None
    assert masked_weights_are_zero(session)
