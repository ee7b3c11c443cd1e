"""Weight quantization after pruning that keeps the masks: k-means weight sharing and per-channel int8.

Only the prunable tensors (conv and linear weights, core.layers) are quantized; biases, BatchNorm and
buffers stay float32. A weight that is zero (pruned) stays exactly zero: only the nonzero weights are
coded, and their positions are the layer's mask.

- k-means weight sharing (Han, Mao & Dally, "Deep Compression", ICLR 2016, section 3): the nonzero
  weights of a layer are clustered into k = 2^bits shared values by Lloyd's 1-D k-means, the centroids
  initialised linearly over [min, max] of the weights (section 3.2: the initialisation Han found best, it keeps the
  few large weights, which matter most); each kept weight stores its centroid's index. Han's bits:
  8 for convolutions, 5 for fully connected layers (`han_bits`).
- per-channel int8: symmetric, one scale a output channel, scale = max|w| / 127, q = round(w / scale) in
  [-127, 127] (the weight scheme of onnxruntime's and PyTorch's per-channel int8).

A layer's code gives the weights back exactly (`weights()`), so a compressed file (core.compressed)
stores the code, and `Quantized.holds(model)` checks that the model still holds what was coded.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from prunetui.core.layers import prunable_parameters

KINDS = ("kmeans", "int8")
HAN_CONV_BITS, HAN_FC_BITS = 8, 5  # Deep Compression, section 3 and Table 1
MAX_ITERATIONS = 100  # Lloyd iterations at most; it stops when no assignment changes
INT8_LEVELS = 127


def han_bits(weight: torch.Tensor) -> int:
    """Han et al.'s bits for a layer: 5 for a fully connected weight (2-D), 8 for a convolution."""
    return HAN_FC_BITS if weight.dim() == 2 else HAN_CONV_BITS


@dataclass
class SharedWeights:
    """One layer's k-means code: `codebook` (k float32 centroids), `indices` (uint8, one a kept weight,
    in row-major order of the kept positions), `mask` (bool, the weight's shape, True = kept)."""

    codebook: torch.Tensor
    indices: torch.Tensor
    mask: torch.Tensor
    bits: int
    kind: str = "kmeans"

    def weights(self) -> torch.Tensor:
        """The dense weight tensor: zeros, and each kept weight its centroid."""
        out = torch.zeros(self.mask.shape, dtype=self.codebook.dtype, device=self.codebook.device)
        out[self.mask] = self.codebook[self.indices.long()]
        return out


@dataclass
class Int8Channels:
    """One layer's per-channel int8 code: `scales` (float32, one a output channel), `values` (int8, one
    a kept weight, row-major order of the kept positions), `mask` (bool, True = kept)."""

    scales: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor
    bits: int = 8
    kind: str = "int8"

    def weights(self) -> torch.Tensor:
        channel_scale = self.scales.reshape(-1, *[1] * (self.mask.dim() - 1)).expand(self.mask.shape)
        out = torch.zeros(self.mask.shape, dtype=self.scales.dtype, device=self.scales.device)
        out[self.mask] = self.values.to(self.scales.dtype) * channel_scale[self.mask]
        return out


LayerCode = SharedWeights | Int8Channels


@dataclass
class Quantized:
    """The codes of a quantized model, by parameter name (prunable tensors only)."""

    kind: str
    codes: dict[str, LayerCode] = field(default_factory=dict)

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Write each layer's coded weights into `model` (in place)."""
        params = prunable_parameters(model)
        for name, code in self.codes.items():
            params[name].copy_(code.weights().to(params[name].device))

    @torch.no_grad()
    def holds(self, model: nn.Module) -> bool:
        """`model` holds exactly the coded weights (nothing changed them since)."""
        params = prunable_parameters(model)
        return all(
            name in params
            and params[name].shape == code.mask.shape
            and torch.equal(params[name].detach().cpu(), code.weights().cpu())
            for name, code in self.codes.items()
        )

    def bits(self) -> dict[str, int]:
        return {name: code.bits for name, code in self.codes.items()}


def kmeans_1d(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on a 1-D float tensor, centroids initialised linearly over [min, max].

    Returns (centroids: k float32, ascending at the start; indices: int64, one a value). Each value goes
    to its nearest centroid (ties to the lower one); an empty cluster keeps its centroid. Stops when no
    assignment changes, or after MAX_ITERATIONS. `values` must not be empty; k >= 1.
    """
    values = values.detach().float().reshape(-1)
    low, high = float(values.min()), float(values.max())
    centroids = torch.linspace(low, high, k, device=values.device) if k > 1 else values.mean().reshape(1)
    indices = _nearest(values, centroids)
    for _ in range(MAX_ITERATIONS):
        sums = torch.zeros(k, device=values.device).index_add_(0, indices, values)
        counts = torch.bincount(indices, minlength=k).float()
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        moved = _nearest(values, centroids)
        if torch.equal(moved, indices):
            break
        indices = moved
    return centroids, indices


def _nearest(values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid for each value (centroids in any order; ties to the lower value)."""
    order = torch.argsort(centroids)
    ordered = centroids[order]
    midpoints = (ordered[1:] + ordered[:-1]) / 2
    return order[torch.bucketize(values, midpoints)]


def share_weights(weight: torch.Tensor, bits: int) -> SharedWeights:
    """k-means weight sharing of one layer's nonzero weights into 2^bits centroids (fewer when the layer
    keeps fewer weights). Raises ValueError for bits outside 1..8."""
    if not 1 <= bits <= 8:
        raise ValueError(f"k-means weight sharing takes 1 to 8 bits, got {bits}")
    weight = weight.detach()
    mask = weight != 0
    kept = weight[mask]
    if kept.numel() == 0:
        empty = torch.zeros(0, dtype=torch.uint8, device=weight.device)
        return SharedWeights(torch.zeros(0, device=weight.device), empty, mask, bits)
    centroids, indices = kmeans_1d(kept, min(2**bits, kept.numel()))
    return SharedWeights(centroids.to(weight.dtype), indices.to(torch.uint8), mask, bits)


def int8_channels(weight: torch.Tensor) -> Int8Channels:
    """Symmetric per-output-channel int8 of one layer's weights; zeros stay zero (round(0) = 0)."""
    weight = weight.detach()
    mask = weight != 0
    peaks = weight.abs().reshape(len(weight), -1).amax(dim=1)
    scales = torch.where(peaks > 0, peaks / INT8_LEVELS, torch.ones_like(peaks))
    channel_scale = scales.reshape(-1, *[1] * (weight.dim() - 1)).expand(weight.shape)
    values = torch.round(weight[mask] / channel_scale[mask]).clamp(-INT8_LEVELS, INT8_LEVELS)
    return Int8Channels(scales, values.to(torch.int8), mask)


def bits_per_layer(
    model: nn.Module, default: int | None, per_layer: dict[str, int] | None = None
) -> dict[str, int]:
    """Bits of every prunable tensor: `per_layer`'s, else `default`, else Han's (`han_bits`)."""
    per_layer = per_layer or {}
    return {
        name: per_layer.get(name, default if default is not None else han_bits(weight))
        for name, weight in prunable_parameters(model).items()
    }


@torch.no_grad()
def quantize_model(model: nn.Module, kind: str, bits: dict[str, int] | None = None) -> Quantized:
    """Quantize the prunable tensors of `model` in place (k-means with `bits` per layer, or int8) and
    return their codes. Pruned weights (zeros) stay zero. ValueError for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown quantization '{kind}': {', '.join(KINDS)}")
    bits = bits or bits_per_layer(model, None)
    quantized = Quantized(kind)
    for name, weight in prunable_parameters(model).items():
        code = share_weights(weight, bits[name]) if kind == "kmeans" else int8_channels(weight)
        quantized.codes[name] = code
    quantized.apply(model)
    return quantized
