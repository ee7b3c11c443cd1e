"""Measured cost: the lab's MAC and parameter counts exactly, latency stated with batch and threads."""

import pytest
import torch
from torch import nn

from prunetui.core.cost import (
    Cost,
    Latency,
    cost_report,
    count_macs,
    count_params,
    evaluating,
    measure_cost,
    measure_latency,
)
from prunetui.sources.vgg import VGG

LAB_DENSE_MACS = 606_164_480  # lab 1, get_model_macs(model, dummy_input) on 1x3x32x32
LAB_DENSE_PARAMS = 9_228_362


@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(0)
    return VGG().eval()


def test_dense_lab_vgg_macs_and_params_are_the_labs(vgg):
    x = torch.zeros(4, 3, 32, 32)  # only the first item counts: MACs are per input
    assert count_macs(vgg, x) == LAB_DENSE_MACS
    assert count_params(vgg) == LAB_DENSE_PARAMS


def test_measure_cost_counts_nonzero_size(vgg):
    cost = measure_cost(vgg, torch.zeros(1, 3, 32, 32))
    assert cost.macs == LAB_DENSE_MACS and cost.params == LAB_DENSE_PARAMS
    nonzero = sum(int(torch.count_nonzero(p)) for p in vgg.parameters())  # fresh BN biases are 0
    assert nonzero < LAB_DENSE_PARAMS
    assert cost.size_mib == pytest.approx(nonzero * 32 / 2**23, rel=1e-9)


def test_counting_leaves_train_mode_and_bn_statistics_alone():
    model = VGG().train()
    before = model.backbone.bn0.running_mean.clone()
    count_macs(model, torch.randn(1, 3, 32, 32))
    assert model.training
    assert torch.equal(model.backbone.bn0.running_mean, before)
    with evaluating(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training


def test_latency_states_batch_threads_and_device():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).train()
    latency = measure_latency(model, torch.randn(1, 3, 16, 16), batch=4, threads=1, min_run_time=0.05)
    assert latency.ms > 0 and latency.runs > 0
    assert (latency.batch, latency.threads, latency.device) == (4, 1, "cpu")
    assert model.training  # mode restored


def test_cost_report_uses_the_product_keys():
    dense, pruned = Cost(10, 5, 1.0), Cost(4, 2, 0.5)
    report = cost_report(dense, pruned, Latency(2.0, 1, 1, "cpu", 10), Latency(1.0, 1, 1, "cpu", 10))
    assert report["macs_dense"] == 10 and report["macs"] == 4
    assert report["params_dense"] == 5 and report["params"] == 2
    assert report["latency_ms_dense"] == 2.0 and report["latency_ms"] == 1.0
    assert report["latency_batch"] == 1 and report["latency_threads"] == 1
    assert cost_report(dense, pruned)["latency_ms"] is None


def test_latency_pair_times_dense_and_pruned_abba(monkeypatch):
    """The order that cancels a drift in the machine's load, and the mean of each side's two runs."""
    from prunetui.core import cost

    order, ms = [], iter([10.0, 4.0, 6.0, 14.0])

    def fake(model, x, batch=1, threads=None, min_run_time=1.0):
        order.append(model)
        return cost.Latency(ms=next(ms), batch=batch, threads=1, device="cpu", runs=3)

    monkeypatch.setattr(cost, "measure_latency", fake)
    dense_model, pruned_model = object(), object()
    dense, pruned = cost.measure_latency_pair(dense_model, pruned_model, None, batch=2)
    assert order == [dense_model, pruned_model, pruned_model, dense_model]
    assert (dense.ms, pruned.ms, dense.runs, dense.batch) == (12.0, 5.0, 6, 2)
