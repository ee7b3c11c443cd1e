"""Progress that tells: a scan's events advance within a layer and name the layer and sparsity, a
finetune's count the batches of every epoch, and the time-left arithmetic (core.eta)."""

import re

import pytest
from conftest import finetune_recipe

from prunetui.core.eta import Eta, duration, line
from prunetui.core.events import Progress, ScanPoint
from prunetui.core.finetune import finetune
from prunetui.core.pruning import prune
from prunetui.core.sensitivity import ScanOptions, scan

SPARSITIES = [0.5, 0.7, 0.9]
LAYERS = ["0.weight", "3.weight", "7.weight"]
DETAIL = re.compile(
    r"^(?P<layer>\S+) at (?P<sparsity>\d\.\d\d)(, images part \d+/\d+)?$"
)  # part: a chunked scan


def scan_events(model, splits, options: ScanOptions) -> list:
    events = []
    scan(model, splits.eval, SPARSITIES, LAYERS, events.append, options=options)
    return events


def progress_between_points(events: list) -> dict[str, list[Progress]]:
    """The scan's Progress events while each layer's points were evaluated."""
    by_layer: dict[str, list[Progress]] = {name: [] for name in LAYERS}
    for event in events:
        match = isinstance(event, Progress) and DETAIL.match(event.detail)
        if match:
            by_layer[match["layer"]].append(event)
    return by_layer


@pytest.mark.parametrize(
    "options",
    [ScanOptions(batch_size=16), ScanOptions(batch_size=16, activation_budget=1), ScanOptions(fast=False)],
    ids=["fast", "fast-chunked", "plain"],
)
def test_scan_progress_advances_within_each_layer_and_names_it(model, splits, options):
    events = scan_events(model, splits, options)  # 96 images in batches of 16: 6 a point
    progress = [e for e in events if isinstance(e, Progress)]
    assert {e.stage for e in progress} == {"scan"}
    total = progress[0].total
    if not options.fast:  # the base accuracy and every point, by batch (the fast scan weighs its batches)
        assert total == (1 + len(LAYERS) * len(SPARSITIES)) * 6
    assert all(e.total == total for e in progress)
    done = [e.done for e in progress]
    assert done == sorted(done) and done[-1] == total and progress[-1].detail == "done"
    for during in progress_between_points(events).values():
        assert len(during) == len(SPARSITIES) * 6  # one a batch, not one a layer
        assert len({e.done for e in during}) == len(during)  # each one further on
        assert {DETAIL.match(e.detail)["sparsity"] for e in during} == {"0.50", "0.70", "0.90"}
    points = [e for e in events if isinstance(e, ScanPoint)]
    assert [(p.layer, p.sparsity) for p in points] == [(n, s) for n in LAYERS for s in SPARSITIES]


def test_scan_progress_before_each_point_names_that_point(model, splits):
    """The detail of the last progress before a ScanPoint is that point's layer and sparsity."""
    events = scan_events(model, splits, ScanOptions(batch_size=16))
    last = None
    for event in events:
        if isinstance(event, ScanPoint):
            assert last.detail == f"{event.layer} at {event.sparsity:.2f}"
        elif isinstance(event, Progress):
            last = event


def test_the_fast_scan_weighs_a_batch_by_the_work_it_does(model, splits):
    """A batch of the last layer's points runs a small part of the forward: it counts for less, so a
    time left taken from a steady rate holds while the scan speeds up."""
    events = scan_events(model, splits, ScanOptions(batch_size=16))
    steps = {
        name: {b.done - a.done for a, b in zip(during, during[1:], strict=False)}
        for name, during in progress_between_points(events).items()
    }
    first, last = steps["0.weight"], steps["7.weight"]
    assert len(first) == len(last) == 1  # the same step all through a layer
    assert 1 <= last.pop() < first.pop() <= 100


def test_scan_with_a_known_base_counts_points_only(model, splits):
    events = []
    scan(
        model, splits.eval, SPARSITIES, ["3.weight"], events.append, base_accuracy=50.0, options=ScanOptions()
    )
    progress = [e for e in events if isinstance(e, Progress)]
    per_point = progress[-1].total // len(SPARSITIES)
    assert progress[-1].total == len(SPARSITIES) * per_point and progress[-1].done == progress[-1].total
    assert not any(e.detail == "base accuracy" for e in progress)


def test_finetune_progress_counts_batches_across_epochs(model, splits):
    masks = prune(model, {"3.weight": 0.5})
    events = []
    finetune(model, splits.train, splits.eval, masks, finetune_recipe(epochs=3), events.append)
    batches = len(splits.train)
    train = [e for e in events if isinstance(e, Progress) and e.stage.startswith("train")]
    assert [e.done for e in train] == list(range(1, 3 * batches + 1))
    assert {e.total for e in train} == {3 * batches}
    assert train[batches].stage == "train epoch 2" and train[batches].detail == f"batch 1/{batches}"
    evaluation = [e for e in events if isinstance(e, Progress) and e.stage == "evaluate"]
    assert len(evaluation) == 3 * len(splits.eval)  # each epoch's evaluation says where it is too
    assert evaluation[-1].detail == f"batch {len(splits.eval)}/{len(splits.eval)}"


# --- core.eta ----------------------------------------------------------------------------------------
def test_eta_is_the_rate_over_the_window():
    eta = Eta(window=10.0, clock=lambda: 0.0)
    eta.update(Progress("scan", 0, 100), now=0.0)
    assert eta.seconds_left(now=0.5) is None and eta.text(now=0.5) == "estimating..."
    eta.update(Progress("scan", 10, 100), now=2.0)
    assert eta.rate(now=2.0) == pytest.approx(5.0)
    assert eta.seconds_left(now=2.0) == pytest.approx(18.0)
    assert eta.text(now=2.0) == "18 s left"
    # a stall lowers the rate: the time since the last event counts
    assert eta.seconds_left(now=4.0) == pytest.approx(90 / 2.5)


def test_eta_forgets_what_is_older_than_the_window():
    eta = Eta(window=10.0)
    for t in range(0, 21):  # 1 unit a second for 20 s, then 11 units a second
        eta.update(Progress("scan", t, 1000), now=float(t))
    for t in range(21, 41):
        eta.update(Progress("scan", 20 + (t - 20) * 11, 1000), now=float(t))
    assert eta.rate(now=40.0) == pytest.approx(11.0)  # the slow start is out of the window
    assert eta.seconds_left(now=40.0) == pytest.approx((1000 - 240) / 11.0)


def test_eta_keeps_a_count_across_another_and_restarts_a_new_one():
    eta = Eta(window=100.0)
    eta.update(Progress("train epoch 1", 0, 100), now=0.0)
    eta.update(Progress("train epoch 1", 50, 100), now=10.0)
    eta.update(Progress("evaluate", 1, 4, "batch 1/4"), now=11.0)  # the epoch's evaluation
    eta.update(Progress("evaluate", 4, 4, "batch 4/4"), now=20.0)
    eta.update(Progress("train epoch 2", 60, 100), now=22.0)  # the training count goes on
    assert eta.rate(now=22.0) == pytest.approx(60 / 22)  # the evaluation's time is in the rate
    eta.update(Progress("train epoch 1", 5, 100), now=30.0)  # the same count started over: a new job
    assert eta.rate(now=30.5) is None
    eta.update(Progress("evaluate", 3, 0), now=31.0)  # unknown total: no estimate
    assert eta.seconds_left(now=40.0) is None and eta.text(now=40.0) == ""


def test_eta_is_zero_when_done_and_reset_forgets():
    eta = Eta()
    eta.update(Progress("scan", 5, 5), now=1.0)
    assert eta.seconds_left(now=2.0) == 0.0 and eta.text(now=2.0) == ""
    eta.reset()
    assert eta.seconds_left(now=2.0) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"), (3725, "1 h 02 min")],
)
def test_duration_words(seconds, text):
    assert duration(seconds) == text


def test_the_progress_line_names_stage_detail_percent_and_time_left():
    eta = Eta()
    eta.update(Progress("scan", 0, 200, "base accuracy"), now=0.0)
    eta.update(Progress("scan", 50, 200, "conv3.weight at 0.70"), now=10.0)
    assert line(Progress("scan", 50, 200, "conv3.weight at 0.70"), eta, now=10.0) == (
        "scan conv3.weight at 0.70 · 25% · 30 s left"
    )


@pytest.mark.parametrize(
    "options", [ScanOptions(batch_size=16), ScanOptions(fast=False)], ids=["fast", "plain"]
)
def test_a_fine_grid_point_is_named_as_it_is(model, splits, options):
    events = []
    scan(model, splits.eval, [0.315, 0.32], LAYERS[:1], events.append, options=options)
    details = {e.detail for e in events if isinstance(e, Progress)}
    assert f"{LAYERS[0]} at 0.315" in details and f"{LAYERS[0]} at 0.32" in details  # 0.315 is not "0.32"
