import threading

import pytest
import torch

from prunetui.core.evaluate import evaluate
from prunetui.core.events import ScanPoint
from prunetui.core.pruning import prune
from prunetui.core.sensitivity import highest_safe_sparsity, lower_bound, scan


def test_scan_matches_pruning_each_layer_alone(model, splits):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = scan(model, splits.eval, [0.5, 0.9], layers=["3.weight", "7.weight"])
    assert not result.cancelled
    assert list(result.layers) == ["3.weight", "7.weight"]
    # weights back exactly as they were
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    for name, accuracies in result.layers.items():
        for s, accuracy in zip(result.sparsities, accuracies, strict=True):
            model.load_state_dict(before)
            prune(model, {name: s})
            assert evaluate(model, splits.eval) == accuracy
    model.load_state_dict(before)
    assert result.base_accuracy == evaluate(model, splits.eval)


def test_scan_defaults_to_every_prunable_tensor_and_reports_points(model, splits):
    points = []
    result = scan(model, splits.eval, [0.5], report=lambda e: isinstance(e, ScanPoint) and points.append(e))
    assert list(result.layers) == ["0.weight", "3.weight", "7.weight"]
    assert [(p.layer, p.sparsity) for p in points] == [(n, 0.5) for n in result.layers]


def test_cancelled_scan_keeps_finished_layers_and_weights(model, splits):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cancel = threading.Event()

    def report(event):
        if isinstance(event, ScanPoint) and event.layer == "3.weight":
            cancel.set()

    result = scan(model, splits.eval, [0.5, 0.7, 0.9], report=report, cancel=cancel)
    assert result.cancelled
    assert list(result.layers) == ["0.weight"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_lower_bound_and_safe_sparsity():
    assert lower_bound(92.95) == pytest.approx(89.425)
    assert highest_safe_sparsity([0.4, 0.5, 0.6], [92.5, 92.0, 85.0], 92.9) == 0.5
    assert highest_safe_sparsity([0.4], [80.0], 92.9) == 0.0
