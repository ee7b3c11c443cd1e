"""Issue 16 wired into the session: recalibration kept by the model and recorded, recalibrated scans that
restore everything and cache apart, global and uniform targets at a size, the measured refinement, AGP runs
that end at the exact targets (resumed too), distillation from the dense weights."""

import threading

import pytest
import torch
from conftest import finetune_recipe, prune_to, tiny_cnn, tiny_splits
from torch.nn.utils import prune as torch_prune

from prunetui.core.events import EpochEnd
from prunetui.core.finetune import snapshot
from prunetui.core.pruning import lab_mask
from prunetui.core.recipe import Recipe
from prunetui.core.refine import Candidate, choose, move, uniform_targets
from prunetui.core.runs import RunStore
from prunetui.core.scan_cache import scan_key
from prunetui.core.sensitivity import ScanOptions
from prunetui.core.session import Origin, Session
from prunetui.core.suggest import ScanTable, suggest_for_budget
from prunetui.errors import UserError
from prunetui.workflow.suggesting import global_targets

TARGETS = {"0.weight": 0.5, "3.weight": 0.8, "7.weight": 0.6}


def session(tmp_path=None) -> Session:
    store = RunStore(tmp_path) if tmp_path is not None else None
    return Session(tiny_cnn(), tiny_splits(), "tiny", Origin(data_spec="tiny"), store)


def test_recalibration_is_kept_by_the_model_and_recorded_in_the_run():
    s = session()
    with pytest.raises(UserError, match="nothing is pruned"):
        s.recalibrate()
    prune_to(s, TARGETS)
    weights = {k: v.clone() for k, v in s.model.named_parameters()}
    accuracy = s.recalibrate()
    assert s.accuracy == accuracy == s.current_run.accuracy_recalibrated
    assert not torch.equal(s.model[1].running_mean, s.state.opened["1.running_mean"])
    assert all(torch.equal(p, weights[k]) for k, p in s.model.named_parameters())


def test_a_recalibrated_scan_restores_weights_and_statistics_and_is_cached_apart(tmp_path):
    s = session()
    before = snapshot(s.model)
    result = s.scan([0.5, 0.9], options=ScanOptions(recalibrate=True), use_cache=False)
    assert result.path == "recalibrated" and set(result.layers) == set(s.layer_names)
    after = snapshot(s.model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    plain = scan_key(s.model, "tiny", [0.5], None, None)
    assert plain == scan_key(s.model, "tiny", [0.5], None, None, recalibrate=False)
    assert plain != scan_key(s.model, "tiny", [0.5], None, None, recalibrate=True)


def test_global_targets_give_torchs_global_unstructured_masks_at_the_budget():
    s = session()
    budget = 0.4 * s.dense_size
    targets = global_targets(s, budget, {})
    assert s.projected_size(targets) <= budget + 1e-12
    model = tiny_cnn()
    modules = [(model[0], "weight"), (model[3], "weight"), (model[7], "weight")]
    pruned = sum(round(s.state.opened[n].numel() * t) for n, t in targets.items())
    torch_prune.global_unstructured(modules, pruning_method=torch_prune.L1Unstructured, amount=pruned)
    for (module, _), name in zip(modules, TARGETS, strict=True):
        assert torch.equal(lab_mask(s.state.opened[name].abs(), targets[name]), module.weight_mask.bool())
    capped = global_targets(s, 0.05 * s.dense_size, {}, cap=0.9)
    assert max(capped.values()) <= 0.9


def test_uniform_targets_are_the_lowest_common_sparsity_that_fits():
    s = session()
    budget = 0.3 * s.dense_size
    targets = uniform_targets(s.unit_names(), s.projected_size, budget)
    value = targets["0.weight"]
    assert set(targets.values()) == {value} and s.projected_size(targets) <= budget
    assert s.projected_size(dict.fromkeys(targets, round(value - 1e-4, 4))) > budget


def test_moves_keep_the_size_and_the_refinement_never_loses_to_a_proposal():
    s = session()
    budget = 0.3 * s.dense_size
    numel = {n: s.state.opened[n].numel() for n in s.layer_names}
    start = uniform_targets(s.unit_names(), s.projected_size, budget)
    assert move(start, "3.weight", "7.weight", 0.1, s.projected_size, budget, numel) is None  # too small
    moved = move(start, "7.weight", "3.weight", 0.1, s.projected_size, budget, numel)
    assert moved["7.weight"] < start["7.weight"] and moved["3.weight"] > start["3.weight"]
    assert s.projected_size(moved) <= budget
    proposals = {"uniform": start, "global": global_targets(s, budget, {})}
    with s.state.scratch():
        refined = choose(proposals, lambda t: s.trial(t), s.projected_size, budget, numel, measures=12)
    assert refined.best.accuracy >= max(c.accuracy for c in refined.baselines.values())
    assert refined.best.size_mib <= budget and refined.tried <= 12
    assert all(torch.equal(v, s.state.opened[k]) for k, v in s.model.state_dict().items())  # scratch


def test_a_refinement_improves_only_by_measured_moves():
    calls = []

    def measure(targets):
        calls.append(targets)
        return 50.0 + 10 * (targets["a"] < 0.55)  # a denser layer a is all that helps

    numel = {"a": 100, "b": 100}

    def size_of(targets):
        return sum(round(n * (1 - targets[k])) for k, n in numel.items()) * 32 / 2**23

    start = Candidate("scan", {"a": 0.6, "b": 0.4}, 50.0, size_of({"a": 0.6, "b": 0.4}))
    refined = choose({"scan": start.targets}, measure, size_of, start.size_mib, numel, measures=10)
    assert refined.best.accuracy == 60.0 and refined.best.targets["a"] < 0.55 and refined.kept >= 1
    assert refined.best.size_mib <= start.size_mib


def test_predictions_stay_within_0_and_100():
    layers = ["a", "b"]
    table = ScanTable(
        [0.5, 0.9], 90.0, {"a": [10.0, 0.0], "b": [10.0, 0.0]}, layers, lambda n, s: round(100 * (1 - s))
    )
    suggestion = suggest_for_budget(
        table, 20 * 32 / 2**23, lambda t: sum(round(100 * (1 - t[n])) for n in layers) * 32 / 2**23
    )
    assert 0.0 <= suggestion.predicted_accuracy <= 100.0


def agp_settings(epochs: int = 2, **more) -> Recipe:
    return finetune_recipe(epochs=epochs, schedule="agp", agp_share=0.7, targets=TARGETS, **more)


def exact(s: Session) -> None:
    for name, target in TARGETS.items():
        n = s.state.opened[name].numel()
        assert s.state.sparsity()[name] == pytest.approx(round(n * target) / n)
        assert float(1 - s.state.masks[name].float().mean()) == pytest.approx(round(n * target) / n)


def test_agp_through_the_session_ends_at_the_exact_targets_and_is_recorded(tmp_path):
    s = session(tmp_path)
    s.targets = dict.fromkeys(s.layer_names, 0.0) | TARGETS
    s.finetune(agp_settings(distill=True, temperature=2.0, alpha=0.5))
    exact(s)
    run = s.current_run
    assert run.schedule == "agp" and run.distill == {"temperature": 2.0, "alpha": 0.5}
    assert run.profile == TARGETS and not s.targets_changed()


def test_agp_resumed_through_the_session_ends_at_the_exact_targets(tmp_path):
    s, cancel = session(tmp_path), threading.Event()

    def stop_after_first_epoch(event):
        if isinstance(event, EpochEnd):
            cancel.set()

    s.finetune(agp_settings(3), stop_after_first_epoch, cancel)
    record = s.runs()[-1]
    assert record.status == "cancelled" and record.resume_file is not None
    resumed = session(tmp_path)
    result, _ = resumed.resume(record.id)
    assert [e.epoch for e in result.epochs] == [1, 2, 3]
    exact(resumed)


def test_distillation_learns_from_the_model_as_opened(monkeypatch):
    seen = {}
    import prunetui.core.training as training_module

    real = training_module.run_here

    def spy(job):
        seen["teacher"] = job.teacher
        return real(job)

    monkeypatch.setattr(training_module, "run_here", spy)
    s = session()
    prune_to(s, TARGETS)
    s.finetune(finetune_recipe(epochs=1, distill=True))
    teacher = seen["teacher"]
    assert teacher is not s.model and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, s.state.opened[k]) for k, v in teacher.state_dict().items())
