import pytest
import torch
from torch.nn.utils import prune as torch_prune

from prunetui.core.pruning import (
    apply_masks,
    compound,
    magnitude_mask,
    magnitude_threshold,
    mask_sparsity,
    masks_from_scores,
    prune,
)


@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.77, 0.9, 0.99])
@pytest.mark.parametrize("shape", [(64, 32, 3, 3), (10, 512), (7, 3)])
def test_mask_matches_torch_l1_unstructured_without_ties(shape, sparsity):
    torch.manual_seed(3)
    n = torch.Size(shape).numel()
    signs = torch.randint(0, 2, (n,)) * 2 - 1
    weight = ((torch.randperm(n) + 1) * signs / n).float().reshape(shape)  # distinct magnitudes
    module = torch.nn.Linear(1, 1)
    module.weight = torch.nn.Parameter(weight.clone())
    torch_prune.l1_unstructured(module, "weight", amount=sparsity)
    assert torch.equal(magnitude_mask(weight, sparsity), module.weight_mask.bool())


def test_every_tie_at_the_threshold_is_pruned():
    weight = torch.tensor([1.0, -1.0, 1.0, 1.0, 2.0, 3.0])
    # k = round(6 * 0.34) = 2 -> threshold = 1.0 -> all four |w| == 1 go, not just two
    mask = magnitude_mask(weight, 0.34)
    assert mask.tolist() == [False, False, False, False, True, True]


def test_k_is_rounded_like_the_lab():
    weight = torch.arange(1.0, 11.0)  # 10 distinct magnitudes
    assert int((~magnitude_mask(weight, 0.25)).sum()) == round(10 * 0.25)  # banker's rounding: 2
    assert int((~magnitude_mask(weight, 0.35)).sum()) == round(10 * 0.35)  # 4


@pytest.mark.parametrize(("sparsity", "kept"), [(0.0, 10), (0.04, 10), (1.0, 0), (1.5, 0), (-0.2, 10)])
def test_edge_sparsities(sparsity, kept):
    weight = torch.arange(1.0, 11.0)
    assert int(magnitude_mask(weight, sparsity).sum()) == kept


def test_threshold_is_the_kth_smallest_magnitude():
    weight = torch.tensor([-5.0, 1.0, -2.0, 4.0, 3.0])
    assert magnitude_threshold(weight, 0.4) == 2.0
    assert magnitude_threshold(weight, 0.0) == 0.0


def test_prune_zeroes_and_keeps_masks(model):
    targets = {"0.weight": 0.5, "3.weight": 0.9, "7.weight": 0.0}
    masks = prune(model, targets)
    assert set(masks) == {"0.weight", "3.weight"}  # zero targets get no mask
    sparsity = mask_sparsity(masks)
    assert sparsity["3.weight"] == pytest.approx(round(16 * 8 * 9 * 0.9) / (16 * 8 * 9))
    weight = dict(model.named_parameters())["3.weight"]
    assert torch.all(weight[~masks["3.weight"]] == 0)


def test_apply_masks_reapplies_after_weights_change(model):
    weight = dict(model.named_parameters())["3.weight"]
    masks = masks_from_scores({"3.weight": weight.detach().abs()}, {"3.weight": 0.5})
    with torch.no_grad():
        weight.add_(1.0)
    apply_masks(model, masks)
    assert torch.all(weight[~masks["3.weight"]] == 0)
    assert torch.all(weight[masks["3.weight"]] != 0)


def test_compound_rule_from_the_blog():
    assert compound(0.75, 0.8) == pytest.approx(0.95)
    assert compound(0.0, 0.6) == pytest.approx(0.6)
    assert compound(0.5, 0.0) == pytest.approx(0.5)
