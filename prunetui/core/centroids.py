"""Centroid finetune of k-means shared weights (Han, Mao & Dally, "Deep Compression", ICLR 2016,
section 3.3, equation 3): the gradient of a centroid is the sum of the gradients of the weights that
share it, and only the centroids move; every weight of a cluster keeps its cluster's value, and the
pruned weights stay exactly zero.

It runs core.finetune's `train_one_epoch` (cross-entropy, the batches, progress and cancel as every
finetune) with `CentroidSGD` as its optimizer, then evaluates each epoch; the best epoch's centroids are
the result (the centroids as quantized count as epoch 0: a finetune that does not help changes nothing).
Parameters other than the shared weights are frozen meanwhile; BatchNorm statistics follow the batches,
as in any finetune.
"""

import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from prunetui.core.evaluate import evaluate
from prunetui.core.events import EpochEnd, Report, ignore
from prunetui.core.finetune import train_one_epoch
from prunetui.core.layers import prunable_parameters
from prunetui.core.quantize import Quantized, SharedWeights

DEFAULT_LR = 1e-4  # per summed gradient: a centroid's step is the sum over its cluster (Han's eq. 3)
MOMENTUM = 0.9


class CentroidSGD(torch.optim.SGD):
    """SGD with momentum on the centroids of k-means codes. `step()` sums each weight's gradient into
    its centroid's (`index_add_`), steps the centroids and writes every shared weight back from them;
    `zero_grad()` clears the weights' gradients too."""

    def __init__(
        self, layers: list[tuple[nn.Parameter, SharedWeights]], lr: float, momentum: float = MOMENTUM
    ):
        self.layers = layers
        for _, code in layers:
            code.codebook.requires_grad_(True)
        super().__init__([code.codebook for _, code in layers], lr=lr, momentum=momentum)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for weight, _ in self.layers:
            weight.grad = None

    @torch.no_grad()
    def step(self, closure=None):
        for weight, code in self.layers:
            grad = (
                weight.grad[code.mask]
                if weight.grad is not None
                else code.codebook.new_zeros(len(code.indices))
            )
            code.codebook.grad = torch.zeros_like(code.codebook).index_add_(0, code.indices.long(), grad)
        super().step()
        for weight, code in self.layers:
            weight[code.mask] = code.codebook[code.indices.long()]


@dataclass
class CentroidResult:
    """What a centroid finetune did: the epochs, the accuracy before (the quantized model's) and the best."""

    accuracy_before: float
    epochs: list[EpochEnd] = field(default_factory=list)
    best_accuracy: float | None = None
    best_epoch: int = 0  # 0: the centroids as quantized were the best


@contextmanager
def only_trainable(model: nn.Module, names: Iterable[str]):
    """Every parameter but `names` frozen (requires_grad False) inside; put back after."""
    names = set(names)
    saved = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        for name, p in model.named_parameters():
            p.requires_grad_(name in names)
        yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(saved[name])


def finetune_centroids(
    model: nn.Module,
    quantized: Quantized,
    train_batches: Iterable,
    eval_batches: Iterable,
    epochs: int,
    lr: float = DEFAULT_LR,
    report: Report = ignore,
    cancel: threading.Event | None = None,
) -> CentroidResult:
    """Finetune the centroids of `quantized` (k-means codes; the model holds their weights) for `epochs`
    epochs; the model is left holding the best epoch's centroids, and `quantized` holds them too.
    Raises ValueError for int8 codes (no centroids), core.events.Cancelled when `cancel` is set (the
    best centroids so far are kept)."""
    if quantized.kind != "kmeans":
        raise ValueError("only k-means codes have centroids to finetune")
    params = prunable_parameters(model)
    layers = [(params[name], code) for name, code in quantized.codes.items() if len(code.indices)]
    result = CentroidResult(evaluate(model, eval_batches, cancel=cancel))
    best = _codebooks(quantized)
    best_accuracy = result.accuracy_before
    optimizer = CentroidSGD(layers, lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * _length(train_batches)))
    try:
        with only_trainable(model, [name for name, code in quantized.codes.items() if len(code.indices)]):
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                train_one_epoch(model, train_batches, optimizer, scheduler, [], epoch, report, cancel,
                                epochs=epochs)  # fmt: skip
                accuracy = evaluate(model, eval_batches, cancel=cancel)
                if accuracy > best_accuracy:
                    best_accuracy, result.best_epoch, best = accuracy, epoch, _codebooks(quantized)
                event = EpochEnd(epoch, accuracy, best_accuracy, time.perf_counter() - started)
                result.epochs.append(event)
                report(event)
    finally:
        for _, code in layers:
            code.codebook.requires_grad_(False)
        _restore(quantized, best)
        quantized.apply(model)
    result.best_accuracy = best_accuracy
    return result


def _length(batches: Iterable) -> int:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return 1


def _codebooks(quantized: Quantized) -> dict[str, torch.Tensor]:
    return {name: code.codebook.detach().clone() for name, code in quantized.codes.items()}


@torch.no_grad()
def _restore(quantized: Quantized, codebooks: dict[str, torch.Tensor]) -> None:
    for name, code in quantized.codes.items():
        code.codebook = codebooks[name].clone()
