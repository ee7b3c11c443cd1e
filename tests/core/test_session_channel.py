"""Channel pruning in a session: the smaller model swapped in, finetuned without masks, fine-grained
pruning on top of it, reset, a group-aware scan cached apart from the fine-grained one, and the cost."""

import torch
from conftest import finetune_recipe, prune_to

from prunetui.workflow.opening import Request, open_session

GROUPS = {"backbone.conv1.weight": 0.5, "backbone.conv2.weight": 0.25}


def demo(tmp_path, method="channel"):
    return open_session(Request(method=method), tmp_path).session  # the demo CNN on digits


def test_channel_prune_then_finetune_then_prune_further(tmp_path):
    session = demo(tmp_path)
    session.targets |= GROUPS
    session.prune()
    assert session.state.channel_pruned and session.state.masks == {}
    assert session.model.backbone.conv1.out_channels == 16 and session.model.backbone.conv2.out_channels == 48
    cost = session.measure_run_cost(latency=False)
    assert cost["macs"] < cost["macs_dense"] and cost["params"] < cost["params_dense"]
    result = session.finetune(finetune_recipe(epochs=1))
    assert result.best_accuracy is not None and session.model.backbone.conv1.out_channels == 16
    assert session.current_run.cost["macs"] == cost["macs"]  # a finetune costs what its prune cost
    session.set_method("magnitude")  # fine-grained, further from the smaller model as finetuned
    prune_to(session, {"backbone.conv3.weight": 0.5}, start="current")
    assert session.model.backbone.conv1.out_channels == 16
    assert set(session.state.masks) == {"backbone.conv3.weight"}
    assert 0.49 < float((session.model.backbone.conv3.weight == 0).float().mean()) < 0.51
    session.reset()
    assert not session.state.channel_pruned and session.model.backbone.conv1.out_channels == 32
    assert session.state.reported_size() == session.dense_size


def test_a_fine_grained_prune_from_dense_puts_the_dense_model_back(tmp_path):
    session = demo(tmp_path)
    prune_to(session, dict(GROUPS))
    session.set_method("magnitude")
    prune_to(session, {"backbone.conv1.weight": 0.5})
    assert not session.state.channel_pruned and session.model.backbone.conv1.out_channels == 32


def test_a_failed_job_puts_the_model_back(tmp_path):
    session = demo(tmp_path)
    prune_to(session, dict(GROUPS))
    smaller = session.model
    try:
        with session.transaction():
            session.reset()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert session.model is smaller and session.state.channel_pruned


def test_group_scan_is_cached_apart(tmp_path):
    session = demo(tmp_path)
    names = ["backbone.conv1.weight", "backbone.conv2.weight"]
    scanned = session.scan([0.5, 0.9], names)
    assert set(scanned.layers) == set(names) and scanned.path == "channel"
    assert not scanned.cached and session.scan([0.5, 0.9], names).cached
    session.set_method("magnitude")
    assert not session.scan([0.5, 0.9], names).cached  # the method is in the key


def test_projected_cost_follows_the_targets_without_pruning(tmp_path):
    session = demo(tmp_path)
    before = {k: v.clone() for k, v in session.model.state_dict().items()}
    projected = session.projection(GROUPS)
    assert projected.cost.macs < session.projection({}).cost.macs
    assert session.projected_size(GROUPS) == projected.size_mib
    assert projected.kept["backbone.conv1.weight"] == (16, 32)
    assert all(torch.equal(before[k], v) for k, v in session.model.state_dict().items())
