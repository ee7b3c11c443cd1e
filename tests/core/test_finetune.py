import threading

import pytest
import torch
from conftest import finetune_recipe
from torch import nn
from torch.utils.data import DataLoader, Sampler

from prunetui.core.evaluate import evaluate
from prunetui.core.events import EpochEnd, Progress
from prunetui.core.finetune import finetune, snapshot, train_epochs
from prunetui.core.held_masks import reapply
from prunetui.core.pruning import prune


def pruned_weights_are_zero(model, masks) -> bool:
    params = dict(model.named_parameters())
    return all(torch.all(params[name][~mask] == 0) for name, mask in masks.items())


def test_masks_hold_through_finetune(model, splits):
    masks = prune(model, {"0.weight": 0.5, "3.weight": 0.8, "7.weight": 0.6})
    result = finetune(model, splits.train, splits.eval, masks, finetune_recipe(epochs=2))
    assert result.completed == 2
    assert pruned_weights_are_zero(model, masks)
    assert any(torch.any(p != 0) for p in model.parameters())  # it did not just zero everything


@pytest.mark.parametrize("foreach", [False, True], ids=["a-multiply-a-layer", "foreach"])
def test_reapply_gives_each_pair_its_own_multiply(foreach, monkeypatch):
    """Both ways (CUDA's foreach multiply, tried here on the CPU): parameters of mixed dtypes and layouts
    (no fused path fits them) and a bool mask (not one `hold_masks` made) come out as `param * mask`."""
    monkeypatch.setattr("prunetui.core.held_masks.FOREACH_DEVICES", ("cpu",) if foreach else ())
    g = torch.Generator().manual_seed(0)
    params = [
        nn.Parameter(torch.randn(4, 3, 3, 3, generator=g)),
        nn.Parameter(torch.randn(8, 4, generator=g).half()),
        nn.Parameter(torch.randn(2, 3, 4, 4, generator=g).to(memory_format=torch.channels_last)),
        nn.Parameter(torch.randn(5, generator=g, dtype=torch.float64)),
    ]
    kept = [torch.rand(p.shape, generator=g) > 0.5 for p in params]
    masks = [torch.empty_like(p).copy_(k) for p, k in zip(params[:3], kept, strict=False)] + [kept[3]]
    expected = [p.detach() * m for p, m in zip(params, masks, strict=True)]
    reapply(list(zip(params, masks, strict=True)))
    for param, want, k in zip(params, expected, kept, strict=True):
        assert torch.equal(param, want) and param.dtype == want.dtype
        assert torch.all(param[~k] == 0) and torch.all(param[k] != 0)
    assert params[2].is_contiguous(memory_format=torch.channels_last)  # in place, layout kept
    reapply([])  # a run that holds no masks (a foreach op rejects empty lists)


def test_best_epoch_is_what_remains(model, splits):
    masks = prune(model, {"3.weight": 0.7})
    states = {}

    def report(event):
        if isinstance(event, EpochEnd):
            states[event.epoch] = snapshot(model)

    # a high lr makes the accuracy wander, so the best epoch is rarely the last
    result = finetune(model, splits.train, splits.eval, masks, finetune_recipe(epochs=4, lr=0.3), report)
    assert [e.epoch for e in result.epochs] == [1, 2, 3, 4]
    best = max(result.epochs, key=lambda e: e.accuracy)
    assert result.best_epoch == best.epoch and result.best_accuracy == best.accuracy
    assert all(torch.equal(v, states[best.epoch][k]) for k, v in model.state_dict().items())
    assert evaluate(model, splits.eval) == pytest.approx(result.best_accuracy)
    assert result.epochs[-1].best_accuracy == result.best_accuracy


def test_epoch_line_is_the_blogs_format():
    assert EpochEnd(1, 93.06, 93.06, 1.0).line() == "Epoch 1 Accuracy 93.06% / Best Accuracy: 93.06%"


def test_cancel_stops_within_one_batch_and_restores(model, splits):
    masks = prune(model, {"3.weight": 0.5})
    before = snapshot(model)
    cancel = threading.Event()
    trained = []

    def report(event):
        if isinstance(event, Progress) and event.stage.startswith("train"):
            trained.append(event.done)
            if event.done == 2:
                cancel.set()

    result = finetune(model, splits.train, splits.eval, masks, finetune_recipe(epochs=3), report, cancel)
    assert result.cancelled and result.completed == 0
    assert trained == [1, 2]  # no batch ran after the cancel
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_cancel_after_an_epoch_keeps_the_best_so_far(model, splits):
    masks = prune(model, {"3.weight": 0.5})
    cancel = threading.Event()

    def report(event):
        if isinstance(event, EpochEnd):
            cancel.set()

    result = finetune(model, splits.train, splits.eval, masks, finetune_recipe(epochs=3), report, cancel)
    assert result.cancelled and result.completed == 1
    assert evaluate(model, splits.eval) == pytest.approx(result.best_accuracy)
    assert pruned_weights_are_zero(model, masks)


def test_learning_rate_follows_a_cosine_over_the_whole_run(model, splits, monkeypatch):
    seen = []
    real_step = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    finetune(model, splits.train, splits.eval, {}, finetune_recipe(epochs=2, lr=0.1))
    assert seen[0] == pytest.approx(0.1)
    assert seen == sorted(seen, reverse=True)  # decays monotonically over both epochs
    assert seen[-1] < 0.01


class EpochSampler(Sampler):
    """In order, remembering the epochs it is told (as DistributedSampler.set_epoch is)."""

    def __init__(self, n: int):
        self.n, self.epochs = n, []

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


class Wrapper(nn.Module):
    """Stands for DDP: holds the model as `module` (its parameters renamed `module.*`), counts forwards."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.module, self.calls = inner, 0

    def forward(self, images):
        self.calls += 1
        return self.module(images)


def test_the_loop_trains_through_the_wrapper_and_evaluates_the_model(model, splits):
    sampler = EpochSampler(len(splits.train.dataset))
    batches = DataLoader(splits.train.dataset, batch_size=16, sampler=sampler)
    wrappers, evaluated = [], []

    def wrap(inner):
        wrappers.append(Wrapper(inner))
        return wrappers[-1]

    def evaluate_fn(evaluated_model):
        evaluated.append(evaluated_model)
        return evaluate(evaluated_model, splits.eval)

    masks = prune(model, {"3.weight": 0.5})
    result = train_epochs(model, batches, masks, finetune_recipe(epochs=2), evaluate_fn, wrap=wrap)
    assert result.completed == 2 and sampler.epochs == [1, 2]
    assert len(wrappers) == 1 and wrappers[0].calls == 2 * len(batches)
    assert evaluated == [model, model]
    assert pruned_weights_are_zero(model, masks)  # held through the wrapper's other parameter names
