"""Finetune and scan as torchrun jobs: 2 local processes on CPU with gloo, and 2 machines of 1 process
meeting through torchrun's c10d rendezvous on localhost, against the in-process engine.

Over the same global batches a distributed finetune is not bit-equal to one process: the sums run in
another order (gradients averaged across the ranks, batch-norm statistics combined from each rank's
half of the batch). How far apart they may end is worked out at PARAM_TOLERANCE below.
"""

import json
import os
import re
import signal
import socket
import threading
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import finetune_recipe
from torch.utils.data import DataLoader

from prunetui.cli import main
from prunetui.core.events import EpochEnd, Progress
from prunetui.core.finetune import FinetuneResult
from prunetui.core.profile import load_profile
from prunetui.core.recipe import Processes
from prunetui.core.runs import RunStore
from prunetui.core.session import Origin, Session, Splits
from prunetui.errors import JobFailed
from prunetui.sources import load_data, load_model
from prunetui.workflow.opening import launcher_for

PROFILES = Path(__file__).parents[2] / "profiles"
EPOCH_LINE = re.compile(r"^ *Epoch (\d+) Accuracy \d+\.\d\d% / Best Accuracy: \d+\.\d\d%$")
IMAGES = 1344  # digits' train split cut to a multiple of the global batch's halves: no padded images
BATCH, EPOCHS = 128, 2

# float32's unit roundoff u = 2**-24. A gradient entry is a sum over the batch; the longest is conv0's:
# 128 images x 8 x 8 positions = 8192 products. Summed in another order (each rank sums its half, then
# the halves are averaged) it moves by at most n * u * g, g the size of the terms (0.2: no gradient
# entry of this run exceeds 0.16). With momentum 0.9 each gradient reaches the weights 1 / (1 - 0.9) = 10
# times over; over S = 22 steps of a cosine from lr 0.01 (mean lr 0.005) the weights can end
#   S * mean lr * 10 * n * u * g = 22 * 0.005 * 10 * 8192 * 6e-8 * 0.2 = 1.1e-4
# apart. Running statistics are not trained: they average activations, which move with the weights
# before them, relatively as much as those weights (size 0.25) do, and twice that for a variance.
# Measured: up to 3.0e-5 on weights, 1.2e-4 on a running_var of 1.75 (7e-5 relative); one process run
# with channels_last on and then off (the same sums in another order, nothing distributed) ends as far
# apart: 2.5e-5 and 1.2e-4. Integers (num_batches_tracked) must be equal.
ROUNDOFF, LONGEST_SUM, GRADIENT_SIZE = 2.0**-24, BATCH * 8 * 8, 0.2
STEPS, MEAN_LR, MOMENTUM_GAIN = EPOCHS * -(-IMAGES // BATCH), 0.01 / 2, 1 / (1 - 0.9)
PARAM_TOLERANCE = STEPS * MEAN_LR * MOMENTUM_GAIN * LONGEST_SUM * ROUNDOFF * GRADIENT_SIZE
BUFFER_RELATIVE_TOLERANCE = 2 * PARAM_TOLERANCE / 0.25


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory) -> Path:
    images, labels = load_data("digits").train.dataset.tensors
    path = tmp_path_factory.mktemp("data") / "digits.pt"
    torch.save({"images": images[:IMAGES].clone(), "labels": labels[:IMAGES].clone()}, path)
    return path


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def one_process(digits_file, tmp_path_factory) -> tuple[Session, FinetuneResult]:
    """The reference: EPOCHS epochs of the pruned demo in this process."""
    session = pruned_session(digits_file, tmp_path_factory.mktemp("one-process"))
    return session, session.finetune(finetune_recipe(epochs=EPOCHS))


def pruned_session(digits_file: Path, workdir: Path) -> Session:
    """The demo pruned hard, on digits in a fixed order, so both engines see the same global batches."""
    spec = f"tensor:{digits_file}"
    model, label = load_model("demo")
    data = load_data(spec)
    train = DataLoader(data.train.dataset, batch_size=BATCH, shuffle=False)
    launch = partial(launcher_for, "demo", spec)
    session = Session(
        model, Splits(train, data.eval), label, Origin(data_spec=spec), RunStore(workdir), launch=launch
    )
    session.apply_profile(load_profile(PROFILES / "demo-aggressive.toml"))
    session.prune()
    session.evaluate()
    return session


def masked_weights_are_zero(session: Session) -> bool:
    params = dict(session.model.named_parameters())
    return all(torch.all(params[name][~mask] == 0) for name, mask in session.state.masks.items())


def assert_same_training(got: Session, want: Session) -> None:
    """Parameters within PARAM_TOLERANCE, float buffers within their relative tolerance, the rest equal."""
    params = dict(want.model.named_parameters())
    want_state = want.model.state_dict()
    for name, tensor in got.model.state_dict().items():
        expected = want_state[name]
        if not tensor.is_floating_point():
            assert torch.equal(tensor, expected), name
            continue
        difference = (tensor.double() - expected.double()).abs().max().item()
        limit = PARAM_TOLERANCE if name in params else BUFFER_RELATIVE_TOLERANCE * expected.abs().max().item()
        assert difference <= limit, (name, difference, limit)


def assert_same_epochs(got: FinetuneResult, want: FinetuneResult) -> None:
    """The same epochs and best epoch; accuracies within one evaluation image."""
    assert [e.epoch for e in got.epochs] == list(range(1, EPOCHS + 1)) and got.best_epoch == want.best_epoch
    for mine, theirs in zip(got.epochs, want.epochs, strict=True):
        assert abs(mine.accuracy - theirs.accuracy) <= 100.0 / IMAGES + 1e-9


def test_two_processes_match_one_over_the_same_global_batches(digits_file, tmp_path, one_process):
    single, expected = one_process
    events = []
    double = pruned_session(digits_file, tmp_path / "double")
    result = double.finetune(finetune_recipe(epochs=EPOCHS, nproc=2), events.append)

    assert_same_epochs(result, expected)
    assert_same_training(double, single)
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_machines_of_one_process_meet_through_c10d(digits_file, tmp_path, one_process, monkeypatch):
    """Two parents, as on two machines, each starting torchrun with one process; they meet at one port."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two torchruns on two shared cores
    single, expected = one_process
    meeting = f"127.0.0.1:{free_port()}"
    sessions = [pruned_session(digits_file, tmp_path / f"machine{i}") for i in range(2)]
    results, errors, cancel = {}, [], threading.Event()

    def machine(i: int) -> None:
        try:
            results[i] = sessions[i].finetune(
                finetune_recipe(epochs=EPOCHS, nnodes=2, endpoint=meeting), cancel=cancel
            )
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=machine, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 150.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    timed_out = any(thread.is_alive() for thread in threads)
    cancel.set()  # stops whatever is still running
    for thread in threads:
        thread.join()
    assert not timed_out and not errors and sorted(results) == [0, 1]
    for i, session in enumerate(sessions):
        assert not results[i].cancelled
        assert_same_epochs(results[i], expected)
        assert_same_training(session, single)
        assert masked_weights_are_zero(session)
    assert results[0].epochs[-1].accuracy == results[1].epochs[-1].accuracy  # one all-reduced count


def scan_rows(err: str) -> list[str]:
    """The grid a scan printed: the lines before its `Scan finished in` line (which must be there)."""
    lines = err.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("Scan finished in"))]


@pytest.mark.parametrize("method", ["magnitude", "taylor"])
def test_scan_over_two_processes_equals_the_in_process_grid(capsys, method):
    """The criterion's scores reach every rank: a taylor scan split over processes is the same grid."""
    argv = ["scan", "--sparsities", "0.5,0.9", "--method", method, "--json"]
    assert main(argv) == 0
    local, local_err = capsys.readouterr()
    assert main([*argv, "--nproc", "2", "--no-cache"]) == 0  # the first scan is in the cache
    split, split_err = capsys.readouterr()
    local, split = json.loads(local), json.loads(split)
    assert split["layers"] == local["layers"] and list(split["layers"]) == list(local["layers"])
    assert split["dense_accuracy"] == local["dense_accuracy"]
    assert split["method"] == local["method"] == method
    assert set(split) == set(local)
    assert scan_rows(split_err) == scan_rows(local_err)  # the same rows in the same order
    assert len(scan_rows(local_err)) == 1 + len(local["layers"])  # the header and one row a layer


def test_prune_finetune_on_two_processes_from_the_command_line(capsys):
    profile = str(PROFILES / "demo-gentle.toml")
    argv = ["prune", "--profile", profile, "--finetune", "2", "--nproc", "2", "--amp", "bf16", "--json"]
    assert main(argv) == 0
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

    result = session.finetune(finetune_recipe(epochs=3, nproc=2), report, cancel)
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
        session.finetune(finetune_recipe(epochs=3, nproc=2), report)
    [_, run] = session.runs()
    assert f"kept the best of {len(run.epochs)} completed epochs" in str(failure.value)
    assert run.status == "failed" and "rank 1" in run.error and len(run.epochs) >= 1
    best = torch.load(tmp_path / ".prunetui" / "runs" / run.resume_file, weights_only=True)["best_model"]
    assert all(torch.equal(v, best[k]) for k, v in session.model.state_dict().items())
    assert masked_weights_are_zero(session)

    result, _ = session.resume(
        run.id, processes=Processes()
    )  # saved by the ranks, resumed in this process: one state format
    assert [e.epoch for e in result.epochs] == [1, 2, 3] and not result.cancelled
    [_, run] = session.runs()
    assert run.status == "finished" and len(run.epochs) == 3 and run.resume_file is None
    assert masked_weights_are_zero(session)
