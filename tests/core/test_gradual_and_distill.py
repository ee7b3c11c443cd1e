"""The training loop's recovery options: AGP masks that grow to the exact targets, resumable mid-schedule;
distillation from a teacher state."""

import copy

import pytest
import torch
from conftest import finetune_recipe, tiny_cnn, tiny_splits

from prunetui.core.finetune import finetune
from prunetui.core.pruning import mask_sparsity
from prunetui.core.recipe import Recipe, RecipeError

TARGETS = {"0.weight": 0.5, "3.weight": 0.8, "7.weight": 0.6}


def agp(epochs: int = 3) -> Recipe:
    return finetune_recipe(epochs=epochs, schedule="agp", agp_share=0.7, targets=TARGETS)


def test_agp_ends_at_exactly_the_targets_and_masks_only_grow():
    model, splits = tiny_cnn(), tiny_splits()
    seen = []
    result = finetune(
        model, splits.train, splits.eval, {}, agp(), save_state=lambda s: seen.append(s["held_masks"])
    )
    params = dict(model.named_parameters())
    for name, target in TARGETS.items():
        n = params[name].numel()
        assert mask_sparsity({name: result.masks[name]})[name] == round(n * target) / n
        assert float((params[name] == 0).float().mean()) == pytest.approx(round(n * target) / n)
    sparsities = [mask_sparsity(masks) for masks in seen]
    for name in TARGETS:
        assert [s[name] for s in sparsities] == sorted(s[name] for s in sparsities)
        assert sparsities[0][name] < TARGETS[name]  # still on its way after the first epoch
    for before, after in zip(seen, seen[1:], strict=False):  # a pruned weight never comes back
        assert all(bool((after[n] <= before[n]).all()) for n in TARGETS)


def test_agp_starts_from_each_layers_sparsity_at_the_start():
    model, splits = tiny_cnn(), tiny_splits()
    start = {"3.weight": torch.rand(16, 8, 3, 3) > 0.4}  # 40% already pruned
    result = finetune(model, splits.train, splits.eval, start, agp(2))
    assert bool((result.masks["3.weight"] <= start["3.weight"]).all())  # the zeros at the start held


def test_agp_resumed_mid_schedule_ends_as_the_uninterrupted_run():
    splits = tiny_splits()
    whole_model, states = tiny_cnn(), []
    # a copy, as the file a real run writes: the state holds the optimizer's live buffers
    whole = finetune(
        whole_model,
        splits.train,
        splits.eval,
        {},
        agp(),
        save_state=lambda s: states.append(copy.deepcopy(s)),
    )
    splits = tiny_splits()  # the same shuffles again
    list(splits.train)  # epoch 1's shuffle, drawn by the run that was killed after it
    resumed_model = tiny_cnn()
    resumed = finetune(resumed_model, splits.train, splits.eval, {}, agp(), resume=states[0])
    assert [e.accuracy for e in resumed.epochs] == [e.accuracy for e in whole.epochs]
    assert all(torch.equal(resumed.masks[n], whole.masks[n]) for n in TARGETS)
    assert all(
        torch.equal(a, b) for a, b in zip(resumed_model.parameters(), whole_model.parameters(), strict=True)
    )


def test_distillation_reaches_the_loss_and_changes_the_training():
    splits = tiny_splits()
    plain_model, distilled_model = tiny_cnn(), tiny_cnn()
    teacher = tiny_cnn().eval().requires_grad_(False)
    finetune(plain_model, splits.train, splits.eval, {}, finetune_recipe(epochs=1))
    splits = tiny_splits()
    recipe = finetune_recipe(epochs=1, distill=True, temperature=2.0, alpha=0.5)
    finetune(distilled_model, splits.train, splits.eval, {}, recipe, teacher=teacher)
    assert not torch.equal(plain_model[0].weight, distilled_model[0].weight)


@pytest.mark.parametrize(
    "bad",
    [
        {"schedule": "linear"},
        {"schedule": "agp"},
        {"distill": True, "alpha": 2.0},
        {"distill": True, "temperature": 0},
        {"distill": True, "epochs": 0},
    ],
)
def test_bad_recovery_settings_are_refused(bad):
    with pytest.raises(RecipeError):
        finetune_recipe(**bad).check()
