import pytest
import torch

from prunetui.core.profile import Profile
from prunetui.core.session import Session
from prunetui.errors import UserError


def test_prune_always_starts_from_the_dense_weights(model, splits):
    session = Session(model, splits, "tiny")
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    session.set_target("3.weight", 0.9)
    session.prune()
    session.set_target("3.weight", 0.3)
    session.prune()
    weight = dict(model.named_parameters())["3.weight"]
    assert float((weight == 0).float().mean()) == pytest.approx(round(1152 * 0.3) / 1152)
    session.reset()
    assert all(torch.equal(v, dense[k]) for k, v in model.state_dict().items())
    assert session.state.masks == {}


def test_projected_size_equals_size_after_pruning(model, splits):
    session = Session(model, splits, "tiny")
    session.set_target("0.weight", 0.5)
    session.set_target("3.weight", 0.85)
    projected = session.projected_size()
    assert projected < session.dense_size
    session.prune()
    assert session.current_size() == projected
    assert session.projected_size() == projected  # still from the dense weights, not the pruned ones


def test_targets_are_clamped(model):
    session = Session(model)
    assert session.set_target("3.weight", 1.7) == 1.0
    assert session.set_target("3.weight", -1) == 0.0


def test_profile_round_trip_through_targets(model):
    session = Session(model, label="tiny")
    session.apply_profile(Profile("p", {"7.weight": 0.4}))
    assert session.targets == {"0.weight": 0.0, "3.weight": 0.0, "7.weight": 0.4}
    assert session.profile("p").sparsity == {"7.weight": 0.4}
    with pytest.raises(UserError, match="unknown layer"):
        session.apply_profile(Profile("bad", {"9.weight": 0.4}))


def test_transaction_restores_on_failure(model, splits):
    session = Session(model, splits, "tiny")
    session.set_target("3.weight", 0.5)
    session.prune()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    masks = session.state.masks
    with pytest.raises(RuntimeError), session.transaction():
        session.reset()
        with torch.no_grad():
            next(model.parameters()).add_(1)
        raise RuntimeError("CUDA out of memory")
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert session.state.masks is not masks and session.state.masks.keys() == masks.keys()


def test_evaluate_records_dense_accuracy_then_scan_uses_current_state(model, splits):
    session = Session(model, splits, "tiny")
    dense = session.evaluate()
    assert session.dense_accuracy == dense
    result = session.scan([0.5], layers=["3.weight"])
    assert result.base_accuracy == dense


def test_jobs_without_data_say_so(model):
    with pytest.raises(UserError, match="no data"):
        Session(model).evaluate()
