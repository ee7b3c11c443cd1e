"""The latency model of a device (core.latency_model): aligned widths, the cache key, the cache, and its
prediction, timed by an injected timer (a function of the model's structure, so no timing noise)."""

from dataclasses import replace

import pytest
import torch
from conftest import tiny_cnn
from fake_timers import StructureTimer
from torch import nn

from prunetui.core.channel import channel_groups, prune_channels
from prunetui.core.latency_cache import LatencyCache, latency_table, table_key
from prunetui.core.latency_fit import random_profiles
from prunetui.core.latency_model import (
    Setting,
    aligned_widths,
    default_round_to,
    measure_table,
    narrowed,
    removal_ratios,
)
from prunetui.core.timers import OrtTimer, measure_speedup, timer_for

X = torch.zeros(1, 1, 8, 8)


def setting(**changes) -> Setting:
    return replace(
        Setting("cpu", torch.__version__, "torch", (1, 8), "float32", 1, 1, (0.75, 0.5, 0.25)), **changes
    )


def groups_of(model: nn.Module):
    return [g for g in channel_groups(model, X) if g.prunable]


@pytest.mark.parametrize(
    ("channels", "cells", "round_to", "expected"),
    [
        (64, 1, 8, [64, 48, 32, 16]),  # multiples of 8
        (60, 1, 8, [60, 48, 32, 16]),  # rounded up to the next multiple: never past the scanned ratios
        (16, 1, 1, [16, 12, 8, 4]),
        (48, 3, 8, [48, 24]),  # a grouped conv's 3 equal parts and 8: multiples of 24
        (6, 1, 8, [6]),  # narrower than one step: only its full width
    ],
)
def test_widths_are_aligned_multiples_below_the_full_width(channels, cells, round_to, expected):
    assert aligned_widths(channels, cells, round_to, (0.75, 0.5, 0.25)) == expected


def test_alignment_defaults_to_8_on_cuda_and_1_on_the_cpu():
    assert default_round_to("cuda:0") == 8 and default_round_to("cpu") == 1


def test_removal_ratios_keep_exactly_the_widths_asked_for():
    model = tiny_cnn().eval()
    first, second = groups_of(model)  # the two convs' outputs (8 and 16 channels)
    channels = {first.name: 8, second.name: 16}
    for width in (1, 3, 7):
        ratios = removal_ratios({first.name: width, second.name: 2 * width + 1}, channels)
        pruned = prune_channels(model, X, ratios).model
        assert (pruned[0].out_channels, pruned[3].in_channels) == (width, width)
        assert (pruned[3].out_channels, pruned[7].in_features) == (2 * width + 1, 2 * width + 1)
    assert removal_ratios({first.name: 8}, channels) == {}


def test_cache_key_covers_the_setting_and_the_structure_not_the_weights():
    model = tiny_cnn()
    key = table_key(model, X, setting())
    for changed in (
        {"device": "cuda:0"},
        {"torch_version": "0.0"},
        {"batches": (1, 16)},
        {"dtype": "float16"},
        {"threads": 2},
        {"runtime": "onnxruntime"},
        {"round_to": 8},
        {"fractions": (0.5,)},
    ):
        assert table_key(model, X, setting(**changed)) != key, changed
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert table_key(model, X, setting()) == key  # latency does not depend on the values
    assert table_key(model, torch.zeros(1, 1, 16, 16), setting()) != key
    wider = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), *list(tiny_cnn())[1:])
    assert table_key(wider, X, setting()) != key


def test_table_is_cached_on_disk_and_read_back_without_timing(tmp_path):
    model = tiny_cnn().eval()
    groups, timer = groups_of(model), StructureTimer(X)
    cache = LatencyCache(tmp_path / "latency")
    first = latency_table(model, X, groups, setting(), timer, cache)
    assert not first.cached and timer.calls > 0 and list((tmp_path / "latency").glob("*.json"))
    calls = timer.calls
    second = latency_table(model, X, groups, setting(), timer, cache)
    assert second.cached and timer.calls == calls
    assert second.groups[groups[0].name].fractions == first.groups[groups[0].name].fractions
    assert second.predict({groups[0].name: 4}, 8) == pytest.approx(first.predict({groups[0].name: 4}, 8))
    assert second.key == first.key and second.observed == []
    second.observe({groups[0].name: 4}, {1: 1.2, 8: 1.2})  # a plan corrects a cached table as a fresh one
    assert second.observed[-1]["widths"] == {groups[0].name: 4}
    (tmp_path / "latency" / f"{first.key}.json").write_text("{broken")
    assert not latency_table(model, X, groups, setting(), timer, cache).cached  # measured again


def chain() -> nn.Module:
    """Three convs in a chain (two prunable groups between them), so the cross term matters."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 12, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 4),
    ).eval()  # fmt: skip


def test_prediction_counts_the_cross_term_of_two_narrowed_neighbours():
    """Latency here is exactly linear in the MACs, so the prediction is exact for any profile, where
    adding the two groups' savings alone would count the middle conv's shrinkage twice."""
    model = chain()
    groups, timer = groups_of(model), StructureTimer(X)
    table = measure_table(model, X, groups, setting(), timer)
    channels = table.channels
    dense = timer.prepare(model)
    for widths in random_profiles(table, 5, seed=3) + [{g.name: 4 for g in groups}]:
        measured = dense(8) / timer.prepare(narrowed(model, X, widths, channels))(8)
        assert table.predicted_speedup(widths, 8) == pytest.approx(measured, rel=0.02), widths
    both = {g.name: 4 for g in groups}
    additive = 1 + sum(table.groups[n].fraction(w, 8) - 1 for n, w in both.items())
    assert table.predict(both, 8) > additive + 0.05


def test_a_slow_width_shows_in_the_table():
    model = chain()
    groups = groups_of(model)
    table = measure_table(model, X, groups, setting(), StructureTimer(X, slow=8, penalty=20.0))
    first = table.groups[groups[0].name]
    assert first.fractions[8][8] > 1.0 > first.fractions[8][12]  # width 8 measured slower than dense
    assert table.saving(groups[0].name, 8, 8) < 0
    assert table.mac_scale[8] > 0.99  # a calibration profile holding the slow width does not drag the fit


def test_measure_speedup_is_the_median_of_abba_pair_ratios():
    samples = iter([10.0, 5.0, 4.0, 10.0, 12.0, 4.0, 6.0, 12.0])  # dense, pruned, pruned, dense (x2)
    calls = []

    def runner(batch):
        calls.append(batch)
        return next(samples)

    (speedup,) = measure_speedup(runner, runner, [4], rounds=2).values()
    assert speedup.ratio == pytest.approx(2.25) and (speedup.low, speedup.high) == (2.0, 3.0)  # 2, 2.5, 3, 2
    assert not speedup.slower and calls == [4] * 8


def test_the_onnxruntime_timer_times_the_exported_model_at_each_batch():
    """--runtime onnxruntime: the model exported (core.onnx_export, checked against PyTorch) and run by
    onnxruntime's CPU provider; a narrower model runs in less time there too (a 4x cut, far past noise)."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is the optional runtime this test times")
    model = chain()
    timer = timer_for("onnxruntime", X, threads=1, min_run_time=0.02)
    assert isinstance(timer, OrtTimer) and timer.runtime == "onnxruntime"
    groups = groups_of(model)
    narrow = narrowed(model, X, {g.name: 4 for g in groups}, {g.name: g.channels for g in groups})
    measured = measure_speedup(timer.prepare(model), timer.prepare(narrow), [1, 16], rounds=2)
    assert set(measured) == {1, 16} and all(s.dense_ms > 0 and s.ms > 0 for s in measured.values())
    assert measured[16].ratio > 1.0


def test_a_whole_measurement_refits_the_share_of_latency_that_follows_the_macs():
    """NetAdapt's correction: a profile measured slower than predicted lowers the MAC share, so the next
    prediction of a like profile is nearer what was measured."""
    model = chain()
    groups = groups_of(model)
    table = measure_table(model, X, groups, setting(), StructureTimer(X))  # 4 exact calibration profiles
    both = {g.name: 4 for g in groups}
    before = table.predicted_speedup(both, 8)
    table.observe(both, {1: before / 2, 8: before / 2})
    after = table.predicted_speedup(both, 8)
    assert before / 2 < after < before and table.mac_scale[8] < 0.99  # weighed with the calibration
    alone = measure_table(model, X, groups, setting(), StructureTimer(X), calibration=0)
    alone.observe(both, {1: before / 2, 8: before / 2})
    assert alone.predicted_speedup(both, 8) == pytest.approx(before / 2)  # the only whole measurement
