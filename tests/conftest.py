"""Shared fixtures: a tiny CNN and tiny real-shaped data, fast on 2 CPU cores."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunetui.cli import main
from prunetui.core.finetune import train_one_epoch
from prunetui.core.held_masks import hold_masks
from prunetui.core.recipe import Finetune, Plan, Processes, Recipe, Recovery
from prunetui.core.session import Splits


@pytest.fixture(autouse=True)
def _short_latency_timing(monkeypatch):
    """Every prune times the model (core.run_cost): the shortest timing keeps tests quick."""
    monkeypatch.setattr("prunetui.core.run_cost.LATENCY_MIN_RUN_TIME", 0.001)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )


def tiny_splits(n: int = 96, batch_size: int = 16, shuffle: bool = True) -> Splits:
    """Four classes that differ in which quadrant is bright: learnable in a few steps."""
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(n) % 4
    images = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    for i, label in enumerate(labels.tolist()):
        r, c = divmod(label, 2)
        images[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 1.0
    dataset = TensorDataset(images, labels)
    return Splits(
        train=DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(2)
        ),
        eval=DataLoader(dataset, batch_size=batch_size),
    )


@pytest.fixture
def model() -> nn.Module:
    return tiny_cnn()


@pytest.fixture
def splits() -> Splits:
    return tiny_splits()


def train_with_batchnorm(batches, channels: int) -> None:
    """One epoch of the finetune loop on a model whose BatchNorm1d raises on a batch of one image."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(channels, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, 1.0)
    train_one_epoch(model, batches, optimizer, scheduler, hold_masks(model, {}), epoch=1)


def run_json(capsys, *argv) -> tuple[dict, str]:
    """`prunetui ARGV --json`: its JSON document and its stderr; fails unless it exits 0 and stdout holds
    the JSON document and nothing else."""
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def finetune_recipe(
    epochs: int = 1,
    lr: float = 0.01,
    amp: str | None = None,
    targets: dict[str, float] | None = None,
    method: str = "magnitude",
    nproc: int = 1,
    endpoint: str | None = None,
    nnodes: int = 1,
    seed: int | None = 0,
    **recovery,
) -> Recipe:
    """A finetune's recipe (core.recipe): epochs, lr, amp, recovery options (schedule, distill...), the
    plan an AGP schedule ends at (`targets`, `method`), processes, a fixed seed."""
    return Recipe(
        plan=Plan(method, dict(targets or {})),
        recovery=Recovery(**recovery),
        finetune=Finetune(epochs=epochs, lr=lr, amp=amp),
        processes=Processes(nproc, nnodes, endpoint),
        seed=seed,
    )


def prune_to(session, targets: dict[str, float] | None = None, **parts):
    """`session.prune` by the session's recipe with `targets` (default its own) and `parts` replaced
    (start="current", name="first", recovery=...): the run record."""
    recipe = session.recipe(**parts)
    return session.prune(recipe.with_targets(targets) if targets is not None else recipe)


@pytest.fixture(scope="session")
def digits160(tmp_path_factory) -> str:
    """The data spec of 160 real digits images (the demo's data, a tensor file): every recipe matrix cell
    trains and evaluates on it in milliseconds."""
    from prunetui.sources import load_data

    images, labels = load_data("digits").train.dataset.tensors
    path = tmp_path_factory.mktemp("data") / "digits160.pt"
    torch.save({"images": images[:160].clone(), "labels": labels[:160].clone()}, path)
    return f"tensor:{path}"
