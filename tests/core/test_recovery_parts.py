"""Recovery building blocks: BatchNorm recalibration, the AGP schedule, global magnitude targets."""

import pytest
import torch
from conftest import tiny_cnn, tiny_splits
from torch import nn
from torch.nn.utils import prune as torch_prune

from prunetui.core.events import Cancelled
from prunetui.core.global_magnitude import global_magnitude_targets
from prunetui.core.pruning import lab_mask, prune
from prunetui.core.recalibrate import recalibrate_bn
from prunetui.core.schedule import AGP, agp_over


def test_recalibration_measures_the_exact_mean_of_the_batches_and_keeps_the_weights():
    model, splits = tiny_cnn().eval(), tiny_splits(shuffle=False)
    prune(model, {"0.weight": 0.7})
    weights = {k: v.clone() for k, v in model.named_parameters()}
    batches = list(splits.train)[:3]
    assert recalibrate_bn(model, batches, count=3) == 3
    features = torch.cat([model[0](images) for images, _ in batches])  # what BN saw, all 3 batches
    torch.testing.assert_close(model[1].running_mean, features.mean(dim=(0, 2, 3)))
    assert all(torch.equal(p, weights[k]) for k, p in model.named_parameters())
    assert not model.training  # the mode it had


def test_recalibration_lifts_a_pruned_models_accuracy():
    """The issue's measurement in small: after pruning, statistics from the dense model misfit."""
    from prunetui.core.evaluate import evaluate
    from prunetui.sources import load_data, load_model

    model, _ = load_model("demo")
    data = load_data("digits")
    prune(model, dict.fromkeys([n for n, p in model.named_parameters() if p.dim() > 1], 0.85))
    before = evaluate(model, data.eval)
    recalibrate_bn(model, data.train)
    assert evaluate(model, data.eval) > before + 20


def test_cancelled_recalibration_puts_the_statistics_back():
    import threading

    model, splits = tiny_cnn(), tiny_splits()
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        recalibrate_bn(model, splits.train, cancel=cancel)
    assert all(torch.equal(v, before[k]) for k, v in model[1].state_dict().items())


def test_no_batch_norm_means_nothing_to_do():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    assert recalibrate_bn(model, tiny_splits().train) == 0


def test_agp_is_cubic_and_ends_exactly_at_the_target():
    schedule = AGP(start=0, end=100, every=10)
    assert schedule.sparsity(0.2, 0.8, 0) == 0.2
    assert schedule.sparsity(0.2, 0.8, 50) == pytest.approx(0.8 - 0.6 * 0.5**3)
    assert schedule.sparsity(0.2, 0.8, 100) == 0.8 and schedule.sparsity(0.2, 0.8, 1000) == 0.8
    values = [schedule.sparsity(0.0, 0.9, t) for t in range(101)]
    assert values == sorted(values)  # only grows
    assert [t for t in range(120) if schedule.is_update(t)] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert agp_over(400, 0.75).end == 299


def test_global_magnitude_equals_torch_global_unstructured():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 30), nn.Linear(30, 20), nn.Linear(20, 10))
    weights = {f"{i}.weight": model[i].weight for i in range(3)}
    total = sum(w.numel() for w in weights.values())
    targets = global_magnitude_targets(weights, kept=total - 1000)
    ours = {n: lab_mask(w.detach().abs(), targets[n]) for n, w in weights.items()}
    torch_prune.global_unstructured(
        [(model[i], "weight") for i in range(3)], pruning_method=torch_prune.L1Unstructured, amount=1000
    )
    for i in range(3):
        assert torch.equal(ours[f"{i}.weight"], model[i].weight_mask.bool())


def test_global_magnitude_cap_keeps_every_layer_alive_and_the_total():
    torch.manual_seed(0)
    weights = {"small": torch.randn(100) * 0.01, "big": torch.randn(1000)}
    total = 1100
    free = global_magnitude_targets(weights, kept=550)
    assert free["small"] == 1.0  # uncapped: the small-magnitude layer is emptied
    capped = global_magnitude_targets(weights, kept=550, cap=0.9)
    assert capped["small"] == 0.9
    kept = sum(w.numel() - round(w.numel() * capped[n]) for n, w in weights.items())
    assert kept == 550 and total - kept == 550
