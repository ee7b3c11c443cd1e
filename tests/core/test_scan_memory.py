"""The fast scan keeps to its activation budget (core.scan_memory): the plan's arithmetic, and what a scan
does with it for a model whose batches may change, one whose output depends on its batch, streamed data
and the full path. The grids are the same whatever the budget (tests/core/test_fast_scan.py has the
split path's grids on the lab VGG)."""

import json

import pytest
import torch
from conftest import tiny_cnn
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.accel import Acceleration
from prunetui.core.events import Notice, Progress, ScanPoint
from prunetui.core.scan_memory import MIB, graph_transient, memory_json, plan_memory
from prunetui.core.sensitivity import ScanOptions, scan
from prunetui.distributed.protocol import encode, event_message, to_event

GRID = [0.5, 0.9]
PLAIN = ScanOptions(fast=False)
# bytes of one image's state at each node index (index 0 unused), to the output's at the end
SIZES = [0, 600, 4000, 4000, 1000, 2500, 400, 40]


def options(budget: int | None, **kwargs) -> ScanOptions:
    return ScanOptions(activation_budget=budget, accel=Acceleration(channels_last=False), **kwargs)


@torch.no_grad()
def taught(model: nn.Module, splits, batch_size: int = 16) -> DataLoader:
    """The eval images labelled by the model's own predictions in the loader's batches (BatchNorm
    statistics measured on them first): the dense accuracy is 100% and each point counts the
    predictions that survive, so one image evaluated differently shows."""
    images = splits.eval.dataset.tensors[0]
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
            module.momentum = None
    model.train()(images)
    labels = torch.cat([model.eval()(x).argmax(1) for x in images.split(batch_size)])
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def test_transient_counts_the_largest_state_and_the_largest_neighbouring_pair():
    assert graph_transient(SIZES) == 4000 + (4000 + 4000)
    assert graph_transient([0, 600, 40]) == 600 + 640  # a graph of one node: its input and output


@pytest.mark.parametrize("budget", [10**9, 400_000, 120_000, 60_000, 25_000])
def test_plan_keeps_to_the_budget_and_shrinks_the_batch_for_it(budget):
    plan = plan_memory(SIZES[:-1], graph_transient(SIZES), budget, batch_size=64, images=200)
    assert plan.transient <= budget // 2  # half for one batch's transient, the rest for states
    assert plan.planned_peak <= budget and plan.warning is None
    assert plan.batch_size == min(64, budget // 2 // graph_transient(SIZES))
    for index in range(1, len(SIZES) - 1):
        held = min(plan.batches_per_chunk(index), plan.batches)
        assert plan.transient + held * plan.states[index] <= budget
        assert plan.batches_per_chunk(index) >= 1


def test_one_image_over_the_budget_runs_one_image_a_batch_and_says_so():
    plan = plan_memory(SIZES[:-1], graph_transient(SIZES), 14_000, batch_size=64, images=200)
    assert plan.batch_size == 1 and plan.planned_peak == 12_000 + 4000 > 14_000
    assert {plan.batches_per_chunk(i) for i in (2, 3)} == {1}
    assert plan.warning.startswith("one image needs about 0.015 MiB of activations against a 0.013 MiB")
    assert plan.summary(None)["batches_per_chunk"] == 1


def test_kept_batches_are_not_changed_and_a_plan_over_the_budget_says_why():
    within = plan_memory(SIZES[:-1], graph_transient(SIZES), 10**9, 48, 200, fixed="the data is streamed")
    assert within.batch_size == 48 and within.warning is None
    over = plan_memory(SIZES[:-1], graph_transient(SIZES), 100_000, 48, 200, fixed="the data is streamed")
    assert over.batch_size == 48 and over.planned_peak > 100_000
    assert over.warning.startswith("the data is streamed, so its batches of 48 images are kept: about 0.")


def test_memory_json_in_mib_and_null_without_a_plan():
    plan = plan_memory(SIZES[:-1], graph_transient(SIZES), 256 * MIB, batch_size=64, images=200)
    doc = memory_json(plan.summary(peak=3 * MIB))
    assert doc == {
        "activation_budget_mib": 256.0,
        "planned_peak_mib": plan.planned_peak / MIB,
        "peak_memory_mib": 3.0,
    }
    assert memory_json(plan.summary(peak=None))["peak_memory_mib"] is None
    assert memory_json(None) == dict.fromkeys(doc)


def test_scan_plans_batches_and_chunks_within_each_budget_and_reads_the_same_grid(model, splits):
    loader = taught(model, splits)
    plain = scan(model, loader, GRID, options=PLAIN)
    assert plain.base_accuracy == 100 and min(min(row) for row in plain.layers.values()) < 90
    roomy = scan(model, loader, GRID, options=options(None)).memory
    assert roomy["budget"] == 2**30 and roomy["batch_size"] == 64 and roomy["batches_per_chunk"] == 2
    sizes = []
    for budget in (roomy["planned_peak"] // 4, roomy["planned_peak"] // 40, 1):
        result = scan(model, loader, GRID, options=options(budget))
        memory = result.memory
        assert result.layers == plain.layers and result.path == "split"
        assert memory["budget"] == budget and memory["peak"] is None  # no CUDA here
        assert memory["planned_peak"] <= budget or (memory["batch_size"] == 1 and memory["warning"])
        sizes.append((memory["batch_size"], memory["batches_per_chunk"]))
    assert sizes[0][0] < 64 and sizes[1][0] < sizes[0][0] and sizes[1][1] < 96 // sizes[1][0]
    assert sizes[-1] == (1, 1)  # one image a batch, one batch held at a time


def test_a_set_batch_size_is_kept_and_only_the_chunks_shrink(model, splits):
    memory = scan(model, splits.eval, GRID, options=options(1, batch_size=16)).memory
    assert memory["batch_size"] == 16 and memory["batches_per_chunk"] == 1
    assert memory["warning"].startswith("the batch size is set (ScanOptions.batch_size)")


def batch_statistics_cnn() -> nn.Module:
    """BatchNorm without running statistics: its output depends on the other images in the batch."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8, track_running_stats=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 4),
    )


def test_batch_dependent_model_keeps_the_loaders_batches_whatever_the_budget(splits):
    model = batch_statistics_cnn()
    loader = taught(model, splits)
    plain = scan(model, loader, GRID, options=PLAIN)  # the loader's batches of 16: 100%
    assert plain.base_accuracy == 100 and min(min(row) for row in plain.layers.values()) < 90
    for budget in (None, 1):
        result = scan(model, loader, GRID, options=options(budget))
        assert result.base_accuracy == plain.base_accuracy and result.layers == plain.layers
        assert result.memory["batch_size"] == 16
    assert result.memory["warning"].startswith("the model's output depends on its batch, so its batches")


def test_streamed_data_keeps_its_batches(model, splits):
    loader = taught(model, splits)
    plain = scan(model, loader, GRID, options=PLAIN)
    result = scan(model, loader, GRID, options=options(1, data_budget=1))
    assert result.layers == plain.layers and result.images == 96
    assert result.memory["batch_size"] == 16 and result.memory["batches_per_chunk"] == 1
    assert result.memory["warning"].startswith("the evaluation images are streamed")


class Untraceable(nn.Module):
    """Data-dependent control flow: the full path, planned from its modules' outputs."""

    def __init__(self):
        super().__init__()
        self.net = tiny_cnn()

    def forward(self, x):
        return self.net(x * 1.0 if x.sum() > 0 else x)


def test_full_path_plans_its_batch_too(splits):
    model = Untraceable()
    loader = taught(model, splits)
    plain = scan(model, loader, GRID, options=PLAIN)
    roomy = scan(model, loader, GRID, options=options(None))
    assert roomy.path == "full" and roomy.memory["batch_size"] == 64
    budget = roomy.memory["planned_peak"] // 8
    tight = scan(model, loader, GRID, options=options(budget))
    assert tight.layers == roomy.layers == plain.layers
    assert tight.memory["batch_size"] < 64 and tight.memory["planned_peak"] <= budget


def test_a_plan_over_budget_is_noticed_before_the_first_point(model, splits):
    events = []
    result = scan(model, taught(model, splits), GRID, options=options(1), report=events.append)
    notices = [i for i, e in enumerate(events) if isinstance(e, Notice)]
    points = [i for i, e in enumerate(events) if isinstance(e, ScanPoint)]
    assert len(notices) == 1 and notices[0] < points[0]
    assert events[notices[0]].text == f"warning: {result.memory['warning']}"
    assert to_event(json.loads(encode(event_message(events[notices[0]])))) == events[notices[0]]  # torchrun
    quiet = []
    scan(model, taught(model, splits), GRID, options=options(None), report=quiet.append)
    assert not any(isinstance(e, Notice) for e in quiet)


def test_progress_names_the_part_of_the_images_when_the_budget_splits_them(model, splits):
    events = []
    result = scan(model, taught(model, splits), GRID, options=options(1), report=events.append)
    parts = -(-96 // result.memory["batch_size"]) // result.memory["batches_per_chunk"]
    details = [e.detail for e in events if isinstance(e, Progress) and " at 0.90" in e.detail]
    assert parts > 1 and any(d.endswith(f", images part 2/{parts}") for d in details)
    roomy = []
    scan(model, taught(model, splits), GRID, options=options(None), report=roomy.append)
    assert not any("part" in e.detail for e in roomy if isinstance(e, Progress))
