"""One model state, one evaluation split, one dense accuracy, whatever the model's BatchNorm kind (issue
13, kind 5).

A BatchNorm without running statistics normalises with the current batch's statistics in eval mode too,
so its predictions depend on which images share a batch. The rule (core.evaldata): the evaluation
loader's own batches define the accuracy; the fast scan re-batches for the device only models whose
output does not depend on the batch. Labels here are each model's own predictions over ONE batch of all
images, so any other batching reads a different accuracy, and each number below is checked against an
oracle loop over the loader's batches.
"""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import finetune_recipe
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.evaldata import batch_dependent, hold_eval_data
from prunetui.core.evaluate import evaluate
from prunetui.core.outputs import logits_of
from prunetui.core.sensitivity import ScanOptions, scan
from prunetui.core.session import Session, Splits
from prunetui.sources import load_data, load_model

MODELS = textwrap.dedent(
    '''
    import torch
    import torch.nn.functional as F
    from torch import nn


    def body(bn1, bn2):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), bn1, nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), bn2, nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
        )


    def no_running_stats():
        """h16: track_running_stats=False."""
        return body(nn.BatchNorm2d(16, track_running_stats=False), nn.BatchNorm2d(16, track_running_stats=False))


    def stats_none():
        """Running statistics set to None after construction."""
        model = body(nn.BatchNorm2d(16), nn.BatchNorm2d(16))
        for bn in (model[1], model[4]):
            bn.running_mean, bn.running_var = None, None
        return model


    def mixed():
        """A tracked BatchNorm2d (momentum=None: a cumulative average) and an untracked BatchNorm1d."""
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16, momentum=None), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(16, track_running_stats=False),
            nn.Linear(16, 10),
        )


    class BatchStats(nn.Module):
        """Normalisation written by hand: no BatchNorm module to recognise."""

        def forward(self, x):
            return F.batch_norm(x, None, None, training=True)


    def functional():
        return body(BatchStats(), BatchStats())


    def tracked():
        """The control: running statistics, so per image."""
        return body(nn.BatchNorm2d(16, momentum=None), nn.BatchNorm2d(16))
    '''
)

DEPENDENT = ["no_running_stats", "stats_none", "mixed", "functional"]
MEMBERS = [*DEPENDENT, "tracked"]
GRID = [0.5, 0.9]


@pytest.fixture(scope="module")
def models_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bn") / "bnmodels.py"
    path.write_text(MODELS)
    return path


def images(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g) * torch.rand(n, 1, 1, 1, generator=g) * 3


@torch.no_grad()
def one_batch_labels(model, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model.eval()(x)).argmax(1)


@torch.no_grad()
def oracle(model, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Top-1 % over consecutive batches of `batch_size`, the lab's loop written out."""
    model.eval()
    correct = sum(
        int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, len(y), batch_size)
    )
    return correct / len(y) * 100.0


def member(models_file, name: str, n: int = 250, batch_size: int = 48):
    """The model and Splits over n images (not a multiple of 48 or of the CPU scan batch, 64)."""
    model, _ = load_model(f"{models_file}:{name}")
    x = images(n)
    y = one_batch_labels(model, x)
    dataset = TensorDataset(x, y)
    return model, Splits(train=DataLoader(dataset, batch_size), eval=DataLoader(dataset, batch_size)), x, y


@pytest.mark.parametrize("name", MEMBERS)
def test_session_evaluate_and_both_scans_read_the_loaders_accuracy(models_file, name):
    model, splits, x, y = member(models_file, name)
    expected = oracle(model, x, y, 48)
    if name in DEPENDENT:
        assert oracle(model, x, y, 64) != expected  # the device's batching would read another number
    assert batch_dependent(model.eval(), x[:8]) == (name in DEPENDENT)

    assert Session(model, splits).evaluate() == expected
    assert Session(model, splits).scan(GRID, layers=["0.weight"]).base_accuracy == expected
    fast = scan(model, splits.eval, GRID)
    plain = scan(model, splits.eval, GRID, options=ScanOptions(fast=False))
    assert fast.base_accuracy == plain.base_accuracy == expected
    assert fast.layers == plain.layers and fast.path == "split"


@pytest.mark.parametrize("name", DEPENDENT)
def test_an_explicit_scan_batch_size_keeps_the_loaders_batches(models_file, name):
    model, splits, x, y = member(models_file, name)
    for options in (ScanOptions(batch_size=32), ScanOptions(batch_size=32, eval_size=100)):
        fast = scan(model, splits.eval, GRID, options=options)
        plain = scan(model, splits.eval, GRID, options=ScanOptions(fast=False, eval_size=options.eval_size))
        assert fast.base_accuracy == plain.base_accuracy and fast.layers == plain.layers
    assert fast.images == 100 and fast.base_accuracy == oracle(model, x[:100], y[:100], 48)


def test_held_data_keeps_or_rebatches_the_loaders_batches():
    x = images(100)
    loader = DataLoader(TensorDataset(x, torch.arange(100)), 30)
    own = hold_eval_data(loader, torch.device("cpu"), None, limit=70)
    assert [len(labels) for _, labels in own] == [30, 30, 10]
    assert [len(labels) for _, labels in own.rebatched(25)] == [25, 25, 20]
    assert torch.equal(torch.cat([labels for _, labels in own.rebatched(25)]), torch.arange(70))


@pytest.mark.parametrize("name", ["no_running_stats", "mixed"])
def test_a_finetune_epochs_accuracy_is_the_sessions_of_the_weights_it_keeps(models_file, name):
    model, splits, x, y = member(models_file, name)
    session = Session(model, splits)
    result = session.finetune(finetune_recipe(epochs=1, lr=0.001))
    assert result.best_accuracy == session.evaluate() == oracle(model, x, y, 48)
    assert Session(model, splits).scan(GRID, layers=["0.weight"]).base_accuracy == result.best_accuracy


@pytest.fixture(scope="module")
def cli_folder(models_file):
    """1100 images: the CLI's evaluation loader gives batches of 512, 512, 76."""
    folder = models_file.parent
    (folder / "none.toml").write_text('name = "none"\n[sparsity]\n"0.weight" = 0.0\n')
    return folder


def cli_json(folder, *argv) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "prunetui", *argv, "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", ["no_running_stats", "stats_none", "mixed"])
def test_scan_and_prune_commands_report_the_same_dense_accuracy(cli_folder, models_file, name):
    model, _ = load_model(f"{models_file}:{name}")
    x = images(1100)
    y = one_batch_labels(model, x)
    data = cli_folder / f"{name}.pt"
    torch.save({"images": x, "labels": y}, data)
    expected = oracle(model, x, y, 512)
    assert expected != oracle(model, x, y, 64)
    common = ["--model", f"{models_file}:{name}", "--data", f"tensor:{data}"]
    scanned = cli_json(cli_folder, "scan", *common, "--layers", "0.weight", "--sparsities", "0.5")
    pruned = cli_json(cli_folder, "prune", *common, "--profile", "none.toml")
    assert scanned["dense_accuracy"] == pruned["accuracy_dense"] == pruned["accuracy_before"] == expected
    session_data = load_data(f"tensor:{data}")
    assert evaluate(model, session_data.eval) == expected


DIST_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch.distributed as dist
    from prunetui.distributed import worker
    from prunetui.sources import load_data, load_model

    spec, data_spec, rendezvous, rank = sys.argv[1:5]
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=int(rank), world_size=2)
    model, _ = load_model(spec)
    data = load_data(data_spec, eval_batch_size=48)
    shard = worker.eval_shard(data, {"eval_batch_size": 48, "num_workers": 0})
    accuracy = worker.global_accuracy(model.eval(), shard, "cpu")
    if int(rank) == 0:
        print(repr(accuracy))
    dist.destroy_process_group()
    """
)


def test_two_processes_evaluate_in_the_same_batches_as_one(models_file, tmp_path):
    """The distributed evaluation deals whole evaluation batches to the ranks."""
    model, _, x, y = member(models_file, "no_running_stats")
    torch.save({"images": x, "labels": y}, tmp_path / "d.pt")
    (tmp_path / "evalrank.py").write_text(DIST_SCRIPT)
    argv = [sys.executable, "evalrank.py", f"{models_file}:no_running_stats", f"tensor:{tmp_path / 'd.pt'}"]
    argv.append(str(tmp_path / "rendezvous"))
    ranks = [
        subprocess.Popen([*argv, str(r)], cwd=tmp_path, stdout=subprocess.PIPE, text=True) for r in (0, 1)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in ranks]
    assert [p.returncode for p in ranks] == [0, 0]
    assert float(outputs[0]) == oracle(model, x, y, 48)
