"""The distributed jobs' parts that need no process group: messages, scan point order, the checks made
before anything is launched, and the CPU SyncBatchNorm outside a process group."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import finetune_recipe
from torch import nn

from prunetui.cli import main
from prunetui.core.events import EpochEnd, Progress, ScanPoint
from prunetui.core.recipe import Processes
from prunetui.core.session import Session
from prunetui.distributed.launch import Launcher, LayerOrder
from prunetui.distributed.protocol import decode, encode, event_message, finetune_result, to_event
from prunetui.distributed.syncbn import CpuSyncBatchNorm, sync_batchnorm
from prunetui.distributed.worker import train_loader
from prunetui.errors import UserError
from prunetui.sources import load_data

PROFILE = Path(__file__).parents[2] / "profiles" / "demo-gentle.toml"


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_events_survive_the_json_lines():
    for event in (
        Progress("train epoch 1", 3, 11),
        ScanPoint("a.weight", 0.5, 97.25),
        EpochEnd(2, 98.5, 99.0, 1.5),
    ):
        assert to_event(decode(encode(event_message(event)))) == event
    assert to_event({"type": "result", "epochs": 2}) is None


def test_lines_that_are_not_messages_are_ignored():
    for line in (b"hello\n", b"[1, 2]\n", b'{"no_type": 1}\n', b"\n"):
        assert decode(line) is None


def test_scan_points_are_reported_in_layer_order():
    reported = []
    order = LayerOrder(["a", "b", "c"], [0.5, 0.9], reported.append)
    order.add(ScanPoint("b", 0.5, 1.0))  # rank 1's first point waits for layer a
    order.add(ScanPoint("a", 0.5, 2.0))
    assert [(p.layer, p.sparsity) for p in reported] == [("a", 0.5)]
    order.add(ScanPoint("a", 0.9, 3.0))
    assert [(p.layer, p.sparsity) for p in reported] == [("a", 0.5), ("a", 0.9), ("b", 0.5)]
    assert order.complete_rows() == {"a": [2.0, 3.0]}
    order.fill({"a": [2.0, 3.0], "b": [1.0, 4.0], "c": [5.0, 6.0]})  # the rows only the result held
    assert [p.layer for p in reported] == ["a", "a", "b", "b", "c", "c"]
    assert order.complete_rows() == {"a": [2.0, 3.0], "b": [1.0, 4.0], "c": [5.0, 6.0]}


def test_no_epoch_means_no_result_and_unchanged_weights():
    result = finetune_result(None, cancelled=True)
    assert result.epochs == [] and result.best_accuracy is None and result.cancelled


def test_a_session_built_in_code_cannot_go_distributed(model, splits):
    session = Session(model, splits, "tiny")
    with pytest.raises(UserError, match="need a model spec and a data spec"):
        session.finetune(finetune_recipe(epochs=1, nproc=2))
    with pytest.raises(UserError, match="need a model spec and a data spec"):
        session.scan(processes=Processes(2))


def test_torchrun_command_for_one_machine_and_for_several():
    one = Launcher("demo", "digits", Processes(4)).command()
    assert one[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in one and one[one.index("--nproc-per-node") + 1] == "4"
    assert one[-2:] == ["-m", "prunetui.distributed.worker"]
    several = Launcher("demo", "digits", Processes(8, 2, "10.0.0.1:29500")).command()
    assert "--standalone" not in several
    assert several[several.index("--nnodes") + 1] == "2"
    assert several[several.index("--rdzv-endpoint") + 1] == "10.0.0.1:29500"
    assert several[several.index("--rdzv-backend") + 1] == "c10d"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["scan", "--nproc", "0"], "process count must be 1 or more, got 0 (--nproc)"),
        (["prune", "--profile", str(PROFILE), "--nproc", "2"], "need finetune epochs (--nproc, --finetune)"),
        (
            ["scan", "--nnodes", "2"],
            "meeting point HOST:PORT, the same on every machine (--nnodes, --rdzv-endpoint)",
        ),
        (["scan", "--nnodes", "2", "--rdzv-endpoint", "host"], "expected HOST:PORT (--rdzv-endpoint)"),
        (["scan", "--nproc", "two"], "invalid int value"),
    ],
)
def test_bad_process_options_are_one_error_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err


def test_cpu_sync_batchnorm_is_batchnorm_outside_a_process_group():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.BatchNorm1d(144))
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    names = [name for name, _ in model.named_parameters()]
    images = torch.randn(8, 1, 8, 8)
    expected = model.train()(images)
    model.load_state_dict(reference)
    converted = sync_batchnorm(model, torch.device("cpu"))
    assert isinstance(converted[1], CpuSyncBatchNorm) and isinstance(converted[3], CpuSyncBatchNorm)
    assert [name for name, _ in converted.named_parameters()] == names
    assert torch.equal(converted(images), expected)


@pytest.mark.parametrize("rank", [0, 1])
def test_a_last_per_rank_batch_of_one_image_is_dropped(monkeypatch, rank):
    """66 images, global batch 16 on 2 ranks: each rank's 33 images end in a batch of one, which its
    BatchNorm cannot train on (one process keeps its last batch of 2)."""
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: rank)
    monkeypatch.setattr(torch.distributed, "broadcast_object_list", lambda objects, src=0: None)
    data = load_data("random:66:3x4x4", batch_size=16)
    assert [len(y) for _, y in data.train][-1] == 2
    job = {"seed": 0, "shuffle": True, "batch_size": 16, "num_workers": 0}
    assert [len(y) for _, y in train_loader(data, job)] == [8, 8, 8, 8]
    job["batch_size"] = 20  # per rank 10: a last batch of 3 is kept
    assert [len(y) for _, y in train_loader(data, job)] == [10, 10, 10, 3]


def test_the_dist_package_imports_no_ui():
    check = "import sys, prunetui.distributed.launch, prunetui.distributed.worker; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
