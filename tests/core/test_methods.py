"""Pruning methods: the criterion interface, Taylor scores, and the method carried everywhere."""

import pytest
import torch
from conftest import tiny_cnn, tiny_splits
from torch.nn import functional as F

from prunetui.core.methods import METHODS, Plan, get_method
from prunetui.core.methods.base import Scoring
from prunetui.core.methods.taylor import Taylor
from prunetui.core.profile import Profile, parse_profile, profile_toml
from prunetui.core.runs import RunStore
from prunetui.core.scan_cache import scan_folder
from prunetui.core.session import Origin, Session
from prunetui.errors import UserError

TARGETS = {"0.weight": 0.5, "3.weight": 0.8, "7.weight": 0.6}


def session_with(method: str, tmp_path=None) -> Session:
    store = RunStore(tmp_path) if tmp_path is not None else None
    session = Session(tiny_cnn(), tiny_splits(), "tiny", Origin(data_spec="tiny"), store)
    if tmp_path is not None:
        session.scans.folder = scan_folder(tmp_path)
    session.set_method(method)
    for name, s in TARGETS.items():
        session.set_target(name, s)
    return session


def demo_session(method: str, tmp_path) -> Session:
    """The demo model (trained, shipped) on a slice of the digits data: scans that say something."""
    from prunetui.sources import load_data, load_model

    model, label = load_model("demo")
    data = load_data("digits")
    session = Session(model, data, label, Origin(data_spec="digits"), RunStore(tmp_path))
    session.scans.folder = scan_folder(tmp_path)
    session.set_method(method)
    for name, s in DEMO_TARGETS.items():
        session.set_target(name, s)
    return session


DEMO_TARGETS = {"backbone.conv1.weight": 0.5, "backbone.conv3.weight": 0.8, "classifier.weight": 0.6}


def test_taylor_and_magnitude_give_the_same_sizes_and_different_masks(tmp_path):
    magnitude, taylor = demo_session("magnitude", tmp_path), demo_session("taylor", tmp_path)
    assert taylor.projected_size() == magnitude.projected_size()
    magnitude.prune()
    taylor.prune()
    assert taylor.current_size() == magnitude.current_size() == magnitude.projected_size()
    for name in DEMO_TARGETS:
        assert int(taylor.state.masks[name].sum()) == int(magnitude.state.masks[name].sum())
        assert not torch.equal(taylor.state.masks[name], magnitude.state.masks[name])


def test_taylor_scores_are_w_times_gradient_summed_over_batches():
    model, splits = tiny_cnn(), tiny_splits(shuffle=False)
    batches = list(splits.train)[:3]  # a plain list is read as it comes
    state = {k: v.clone() for k, v in model.state_dict().items()}
    scores = Taylor(batches=3).scores(Scoring(model, state, ["3.weight"], batches))
    expected = torch.zeros_like(state["3.weight"])
    model.eval()
    for images, labels in batches:
        model.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        expected += (model[3].weight.detach() * model[3].weight.grad).abs()
    torch.testing.assert_close(scores["3.weight"], expected)


def test_taylor_never_runs_the_shared_model_nor_draws_from_its_loader():
    """A scan or finetune may use the model and the loader on another thread meanwhile."""
    model, splits = tiny_cnn(), tiny_splits()
    calls = []
    model.register_forward_hook(lambda module, *_: calls.append(module is model))  # copied with the model
    generator_state = splits.train.generator.get_state()
    Taylor().scores(Scoring(model, model.state_dict(), ["0.weight"], splits.train))
    assert calls and not any(calls) and torch.equal(splits.train.generator.get_state(), generator_state)


def test_taylor_scores_leave_the_model_alone_and_repeat_exactly():
    model, splits = tiny_cnn(), tiny_splits()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = Taylor().scores(Scoring(model, model.state_dict(), ["0.weight", "7.weight"], splits.train))
    second = Taylor().scores(Scoring(model, model.state_dict(), ["0.weight", "7.weight"], splits.train))
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # BN statistics too
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(first[n], second[n]) for n in first)  # the same draw of batches


def test_taylor_needs_training_data():
    with pytest.raises(UserError, match="training data"):
        Session(tiny_cnn()).set_method("taylor")
    with pytest.raises(UserError, match="training batches"):
        model = tiny_cnn()
        Taylor().scores(Scoring(model, model.state_dict(), ["0.weight"], None))


def test_unknown_method_is_named():
    with pytest.raises(UserError, match="unknown pruning method 'hessian'.*magnitude, taylor"):
        get_method("hessian")
    assert get_method("channel").traits.structured and not get_method("taylor").traits.structured


def test_the_torch_free_registry_is_the_methods_registry():
    from prunetui.core import recipe

    assert tuple(recipe.METHODS) == tuple(METHODS)
    for name, method in METHODS.items():
        assert method().traits is recipe.METHODS[name]
        assert (method().gradual_scores() is not None) == recipe.METHODS[name].gradual


def test_scans_of_the_two_methods_are_cached_apart(tmp_path):
    magnitude = demo_session("magnitude", tmp_path)
    first = magnitude.scan([0.5, 0.9])
    taylor = demo_session("taylor", tmp_path)
    scanned = taylor.scan([0.5, 0.9])
    assert not first.cached and not scanned.cached  # the magnitude scan does not serve the taylor one
    assert scanned.layers != first.layers
    assert taylor.scan([0.5, 0.9]).cached and taylor.scan([0.5, 0.9]).layers == scanned.layers
    assert len(list(scan_folder(tmp_path).glob("*.json"))) == 2


def test_taylor_scan_prunes_by_taylor_scores(tmp_path):
    """A scan point equals the accuracy of the model pruned that way by hand."""
    session = demo_session("taylor", tmp_path)
    result = session.scan([0.8], layers=["backbone.conv3.weight"])
    session.targets = {name: 0.0 for name in session.layer_names} | {"backbone.conv3.weight": 0.8}
    session.prune()
    assert result.layers["backbone.conv3.weight"] == [session.evaluate()]
    assert result.layers["backbone.conv3.weight"] != [result.base_accuracy]


def test_method_reaches_runs_profiles_and_exports(tmp_path):
    from prunetui.core.export import export_checkpoint
    from prunetui.core.profile import load_profile

    session = session_with("taylor", tmp_path)
    session.prune()
    assert session.runs()[-1].method == "taylor"
    profile = session.profile("mine")
    assert profile.method == "taylor" and parse_profile(profile_toml(profile)).method == "taylor"
    written = export_checkpoint(session, tmp_path / "out.pt", "mine")
    assert load_profile(written.side_file).method == "taylor"
    assert torch.load(written.path, weights_only=True)["prunetui"]["method"] == "taylor"


def test_a_profile_sets_the_session_method():
    session = session_with("magnitude")
    session.apply_profile(Profile("p", {"3.weight": 0.5}, method="taylor"))
    assert session.method.name == "taylor" and session.plan() == Plan("taylor", {"3.weight": 0.5})


def test_cli_knows_every_method_without_importing_torch():
    from prunetui.cli import METHOD_NAMES

    assert tuple(METHODS) == METHOD_NAMES
