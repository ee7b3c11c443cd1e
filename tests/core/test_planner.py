"""The planner's solver and its measure-and-correct loop (core.planner) on given options and measurements,
and the search / held-out split of the evaluation images (core.holdout)."""

from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.holdout import split_eval, split_indices
from prunetui.core.planner import Loop, WidthOption, search, solve
from prunetui.core.timers import Speedup

BATCHES = (1, 64)


def option(width: int, drop: float, at_1: float, at_64: float) -> WidthOption:
    return WidthOption(width, drop, {1: at_1, 64: at_64})


# two groups of 16: `a` is cheap to narrow (little loss), `b` costly; batch 1 gains less than batch 64
OPTIONS = {
    "a": [option(16, 0.0, 1.0, 1.0), option(8, 0.5, 0.85, 0.7), option(4, 3.0, 0.8, 0.6)],
    "b": [option(16, 0.0, 1.0, 1.0), option(8, 2.0, 0.85, 0.7), option(4, 9.0, 0.8, 0.6)],
}


def additive(widths, batch):
    """The sum rule on OPTIONS (what core.latency_model predicts without cross terms)."""
    by_width = {name: {o.width: o.fraction[batch] for o in opts} for name, opts in OPTIONS.items()}
    return 1.0 + sum(by_width[name][w] - 1.0 for name, w in widths.items())


def widths_of(picked):
    return {name: o.width for name, o in picked.items()}


def test_solve_takes_the_least_loss_profile_reaching_the_goal_at_every_batch():
    assert widths_of(solve(OPTIONS, 1.4, (64,), additive)) == {"a": 8, "b": 16}  # 1/0.7: cheapest a alone
    assert widths_of(solve(OPTIONS, 1.4, BATCHES, additive)) == {"a": 8, "b": 8}  # batch 1 needs both
    assert solve(OPTIONS, 3.0, BATCHES, additive) is None  # not even the narrowest (1/0.6 at batch 1)
    # a measured offset (the model was optimistic by 0.1 of dense at batch 64) asks for more
    assert widths_of(solve(OPTIONS, 1.4, (64,), additive, {64: 0.1})) == {"a": 8, "b": 8}  # 2.5 < a4: 3.0


def speedups(ratio: float) -> dict[int, Speedup]:
    return {b: Speedup(ratio, ratio * 0.95, ratio * 1.05, 1.0, 1.0 / ratio) for b in BATCHES}


def loop_for(measure, accuracy=lambda widths: 90.0 - sum(16 - w for w in widths.values()), rounds=3) -> Loop:
    return Loop(BATCHES, additive, measure, accuracy, rounds=rounds, keep=2)


def test_search_corrects_an_optimistic_model_with_whole_measurements():
    """Whole profiles measure 0.1 of dense slower than predicted at batch 64: the first solution falls
    short, the correction asks for more, and the result reaches the goal by measurement."""
    measured = []

    def measure(widths):
        measured.append(dict(widths))
        ratio = 1.0 / (additive(widths, 64) + 0.1)
        return {64: Speedup(ratio, ratio * 0.95, ratio * 1.05, 1.0, 1.0 / ratio)}

    loop = Loop((64,), additive, measure, lambda widths: 90.0, rounds=3, keep=2)
    found = search(OPTIONS, 1.4, loop)
    assert measured[:2] == [{"a": 8, "b": 16}, {"a": 8, "b": 8}]
    assert not found.candidates[0].reaches(1.4)  # predicted 1.43x, measured 1.25x
    assert found.reached and found.best.widths == {"a": 8, "b": 8} and found.best.accuracy == 90.0


def test_search_never_returns_a_profile_that_measures_slower_than_dense():
    """Each group alone looks faster (the table), but every whole profile measures slower (a layout
    change, a launch-bound device): nothing is returned, and the narrowest profile says why."""
    found = search(OPTIONS, 1.3, loop_for(lambda widths: speedups(0.9)))
    assert found.best is None and not found.reached
    assert found.narrowest is not None and found.narrowest.widths == {"a": 4, "b": 4}
    assert all(c.slower for c in found.candidates)


def test_search_returns_the_fastest_that_is_not_slower_when_the_goal_is_out_of_reach():
    def measure(widths):
        return speedups(1.0 + 0.01 * sum(16 - w for w in widths.values()))  # at most 1.24x

    found = search(OPTIONS, 2.0, loop_for(measure))
    assert not found.reached and found.best is not None
    assert found.best.widths == {"a": 4, "b": 4} and found.best.least_speedup == pytest.approx(1.24)


def test_search_ranks_the_candidates_reaching_the_goal_by_measured_accuracy():
    """The predicted loss ranks {a: 8, b: 8} first; measured after recalibration, b matters less than
    the scan said: the best by measured accuracy wins."""

    def accuracy(widths):
        return 90.0 - (16 - widths["a"]) * 0.5 - (16 - widths["b"]) * 0.1

    found = search(OPTIONS, 1.2, loop_for(lambda widths: speedups(3.0), accuracy, rounds=4))
    ranked = [c for c in found.candidates if c.accuracy is not None]
    assert found.best.accuracy == max(c.accuracy for c in ranked)


def test_the_uniform_baseline_competes_on_the_same_measurements():
    """The solver narrows `a` alone ({a: 8, b: 16}); when narrowing both alike measures more accurate
    after recalibration, the uniform profile is returned."""

    def accuracy(widths):
        return 95.0 if len(set(widths.values())) == 1 else 80.0

    def measure(widths):
        return {64: Speedup(3.0, 2.9, 3.1, 1.0, 1 / 3)}

    loop = Loop((64,), additive, measure, accuracy, rounds=1, keep=2)
    found = search(OPTIONS, 1.4, loop)
    assert [c.source for c in found.candidates] == ["planned", "uniform"]
    assert found.candidates[0].widths == {"a": 8, "b": 16}
    assert (
        found.best.source == "uniform"
        and found.best.widths == {"a": 8, "b": 8}
        and found.best.accuracy == 95.0
    )
    assert search(OPTIONS, 1.4, replace(loop, uniform=False)).best.widths == {"a": 8, "b": 16}


def test_held_out_split_is_disjoint_deterministic_and_covers_every_image():
    search_part, held = split_indices(101, 0.5, seed=0)
    assert sorted(search_part + held) == list(range(101)) and len(held) == 50
    assert (search_part, held) == split_indices(101, 0.5, seed=0)
    assert split_indices(101, 0.5, seed=1) != (search_part, held)
    assert len(split_indices(10, 0.3)[1]) == 3
    for bad in ((10, 0.0), (10, 1.0), (1, 0.5)):
        with pytest.raises(ValueError):
            split_indices(*bad)


@pytest.mark.parametrize("as_loader", [True, False])
def test_split_eval_gives_two_disjoint_sets_of_images(as_loader):
    images = torch.arange(40, dtype=torch.float32).reshape(40, 1, 1, 1)
    labels = torch.arange(40) % 3
    loader = DataLoader(TensorDataset(images, labels), batch_size=8)
    batches = loader if as_loader else [(images[i : i + 8], labels[i : i + 8]) for i in range(0, 40, 8)]
    split = split_eval(batches, 0.25, seed=0)
    seen = {"search": [], "held": []}
    for name, part in (("search", split.search), ("held", split.held_out)):
        for x, y in part:
            assert len(x) <= 8
            seen[name] += x.flatten().long().tolist()
            assert (y == x.flatten().long() % 3).all()  # labels stay with their images
    assert not set(seen["search"]) & set(seen["held"])
    assert sorted(seen["search"] + seen["held"]) == list(range(40))
    assert (split.search_images, split.held_out_images) == (30, 10)
