"""Pruning further from the current weights (iterative pruning), the targets the weights hold, and runs
the user names and annotates."""

import pytest
import torch
from conftest import finetune_recipe, prune_to, tiny_cnn, tiny_splits

from prunetui.core import pruning
from prunetui.core.recipe import RecipeError
from prunetui.core.runs import RunStore
from prunetui.core.session import Origin, Session
from prunetui.errors import UserError
from prunetui.workflow import steps


def open_session(workdir) -> Session:
    return Session(tiny_cnn(), tiny_splits(), "tiny", Origin(data_spec="tiny"), RunStore(workdir))


def zeros(session: Session, name: str) -> torch.Tensor:
    return dict(session.model.named_parameters())[name].detach() == 0


def test_pruning_further_only_grows_sparsity_and_holds_the_masks_through_finetuning(tmp_path):
    session = open_session(tmp_path)
    session.set_target("3.weight", 0.5)
    session.prune()
    session.finetune(finetune_recipe(epochs=1))
    first = zeros(session, "3.weight").clone()
    finetuned, weight = (
        session.current_run,
        dict(session.model.named_parameters())["3.weight"].detach().clone(),
    )
    session.set_target("3.weight", 0.75)
    session.set_target("0.weight", 0.3)
    projected = session.projected_size(start="current")
    prune_to(session, start="current")
    assert session.current_size() == projected  # the projection from the current weights is exact
    now = zeros(session, "3.weight")
    assert bool((now | ~first).all())  # every weight pruned before is still pruned
    assert float(now.float().mean()) == pytest.approx(0.75, abs=1 / 1152)
    run = session.current_run
    assert run.start == "current" and run.parent == finetuned.id and run.kind == "prune"
    assert session.runs()[-1].start == "current"
    assert torch.equal(~now, pruning.lab_mask(weight.abs(), 0.75))  # scored on the finetuned weights
    session.finetune(finetune_recipe(epochs=1))
    assert bool((zeros(session, "3.weight") | ~now).all())  # held through the finetune


def test_a_target_below_the_current_sparsity_keeps_the_layers_sparsity(tmp_path):
    session = open_session(tmp_path)
    session.set_target("3.weight", 0.8)
    session.prune()
    before = zeros(session, "3.weight").clone()
    session.set_target("3.weight", 0.4)
    projected = session.projected_size(start="current")
    assert projected == pytest.approx(session.current_size())  # nothing more to prune
    assert session.projected_size() > projected  # from dense, 0.4 keeps more
    said = []
    steps.prune(session, lambda text, style="": said.append(text), recipe=session.recipe(start="current"))
    assert torch.equal(zeros(session, "3.weight"), before)
    assert any("Pruning further from the current weights" in line for line in said)
    assert any("3.weight 0.40 < 0.80" in line for line in said)


def test_pruning_from_dense_restores_the_dense_weights_and_says_so(tmp_path):
    session = open_session(tmp_path)
    session.set_target("3.weight", 0.8)
    session.prune()
    session.set_target("3.weight", 0.3)
    said = []
    steps.prune(session, lambda text, style="": said.append(text))
    assert float(zeros(session, "3.weight").float().mean()) == pytest.approx(0.3, abs=1 / 1152)
    assert session.current_run.start == "dense" and session.current_run.parent is None
    assert said[0] == "Pruning from the dense weights"


def test_further_on_a_dense_model_is_a_prune_from_dense(tmp_path):
    session = open_session(tmp_path)
    session.set_target("3.weight", 0.5)
    prune_to(session, start="current")
    assert session.current_run.start == "dense"
    with pytest.raises(RecipeError, match="starts from 'dense' or 'current'"):
        prune_to(session, start="sideways")


def test_targets_changed_compares_the_targets_with_what_the_weights_hold(tmp_path):
    session = open_session(tmp_path)
    assert not session.targets_changed()  # dense, no target
    session.set_target("3.weight", 0.5)
    assert session.targets_changed()
    session.prune()
    assert not session.targets_changed()
    assert session.pruned_targets()["3.weight"] == 0.5
    session.finetune(finetune_recipe(epochs=1))
    assert not session.targets_changed()  # the finetune holds the prune's targets
    session.set_target("3.weight", 0.75)
    assert session.targets_changed()
    said = []
    steps.finetune(session, finetune_recipe(epochs=1), lambda text, style="": said.append(text))
    assert any(
        line.startswith("Targets changed since the last prune: finetuning the masks of") for line in said
    )
    session.reset()
    assert session.pruned_targets()["3.weight"] == 0.0 and session.targets_changed()


def test_nothing_pruned_reports_the_dense_size(tmp_path):
    session = open_session(tmp_path)
    with torch.no_grad():
        session.model[1].bias.zero_()  # BatchNorm's zero-initialised bias: not pruning
    session = Session(session.model, None, "tiny")
    assert session.current_size() < session.dense_size
    assert session.state.reported_size() == session.dense_size
    assert session.projected_size() == session.dense_size
    session.set_target("3.weight", 0.5)
    session.prune()
    assert session.state.reported_size() == session.current_size() < session.dense_size


def test_a_run_is_named_and_annotated_atomically(tmp_path):
    session = open_session(tmp_path)
    session.set_target("3.weight", 0.5)
    session.prune()
    session.annotate_run("1", name="  late  layers ", note="conv3 was the sensitive one")
    [run] = RunStore(tmp_path).load_all()
    assert (run.name, run.note) == ("late layers", "conv3 was the sensitive one")
    assert session.current_run.name == "late layers"
    with pytest.raises(UserError, match="run name"):
        session.annotate_run("1", name=" ")
    assert not list((tmp_path / ".prunetui" / "runs").glob("*.tmp*"))
