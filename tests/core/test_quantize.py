"""Quantization after pruning (issue 24): k-means weight sharing keeps the masks, int8 per channel, and
the centroid finetune moves centroids, never single weights (Han et al. 2016, eq. 3)."""

import torch
from conftest import tiny_cnn, tiny_splits
from torch import nn

from prunetui.core.centroids import CentroidSGD, finetune_centroids
from prunetui.core.layers import prunable_parameters
from prunetui.core.pruning import apply_masks, magnitude_mask
from prunetui.core.quantize import (
    bits_per_layer,
    int8_channels,
    kmeans_1d,
    quantize_model,
    share_weights,
)


def pruned_weight(shape=(24, 40), sparsity=0.7) -> torch.Tensor:
    weight = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    return weight * magnitude_mask(weight, sparsity)


def pruned_cnn(sparsity: float = 0.6) -> nn.Module:
    model = tiny_cnn()
    apply_masks(model, {n: magnitude_mask(p, sparsity) for n, p in prunable_parameters(model).items()})
    return model


def test_kmeans_keeps_the_mask_and_at_most_2_to_the_bits_values():
    weight = pruned_weight()
    code = share_weights(weight, bits=3)
    shared = code.weights()
    assert torch.equal(shared == 0, weight == 0)  # pruned exactly zero, kept ones nonzero
    assert len(torch.unique(shared[shared != 0])) <= 2**3
    assert code.indices.dtype == torch.uint8 and len(code.indices) == int((weight != 0).sum())


def test_linear_initialisation_gives_lloyds_fixed_point():
    """Values 0..9, two centroids initialised at 0 and 9: the halves, centroids 2 and 7."""
    centroids, indices = kmeans_1d(torch.arange(10.0), 2)
    assert centroids.tolist() == [2.0, 7.0]
    assert indices.tolist() == [0] * 5 + [1] * 5


def test_quantize_model_uses_hans_bits_and_leaves_biases():
    model = pruned_cnn()
    biases = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() == 1}
    zeros = {n: (p == 0).clone() for n, p in prunable_parameters(model).items()}
    bits = bits_per_layer(model, None)
    assert bits == {"0.weight": 8, "3.weight": 8, "7.weight": 5}  # convolutions 8, fully connected 5
    quantized = quantize_model(model, "kmeans", bits_per_layer(model, 2, {"3.weight": 3}))
    assert quantized.bits() == {"0.weight": 2, "3.weight": 3, "7.weight": 2}
    for name, param in prunable_parameters(model).items():
        assert torch.equal(param == 0, zeros[name])
        assert len(torch.unique(param[param != 0])) <= 2 ** quantized.bits()[name]
    assert all(torch.equal(p, biases[n]) for n, p in model.named_parameters() if p.dim() == 1)
    assert quantized.holds(model)


def test_int8_per_channel_keeps_zeros_and_rounds_within_half_a_step():
    weight = pruned_weight((6, 3, 3, 3), 0.5)
    code = int8_channels(weight)
    restored = code.weights()
    assert torch.equal(restored == 0, weight == 0)
    assert int(code.values.abs().max()) == 127 and code.values.dtype == torch.int8
    step = code.scales.reshape(-1, 1, 1, 1)
    assert bool(((restored - weight).abs() <= step / 2 + 1e-7).all())


def test_a_centroid_step_sums_the_gradients_of_its_weights():
    model = pruned_cnn()
    quantized = quantize_model(model, "kmeans", bits_per_layer(model, 2))
    params = prunable_parameters(model)
    layers = [(params[name], code) for name, code in quantized.codes.items()]
    before = {name: code.codebook.clone() for name, code in quantized.codes.items()}
    optimizer = CentroidSGD(layers, lr=0.1)
    images, labels = next(iter(tiny_splits().train))
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(images), labels).backward()
    grads = {name: params[name].grad.clone() for name in quantized.codes}
    optimizer.step()
    for name, code in quantized.codes.items():
        kept = grads[name][code.mask]
        summed = torch.stack([kept[code.indices.long() == k].sum() for k in range(len(code.codebook))])
        assert torch.allclose(
            code.codebook, before[name] - 0.1 * summed, atol=1e-6
        )  # first step: no momentum
        weight = params[name].detach()
        assert torch.equal(weight, code.weights())  # every weight is its centroid; pruned ones zero


def test_centroid_finetune_keeps_clusters_and_masks():
    model, splits = pruned_cnn(0.5), tiny_splits()
    quantized = quantize_model(model, "kmeans", bits_per_layer(model, 2))
    indices = {name: code.indices.clone() for name, code in quantized.codes.items()}
    zeros = {n: (p == 0).clone() for n, p in prunable_parameters(model).items()}
    result = finetune_centroids(model, quantized, splits.train, splits.eval, epochs=2, lr=0.05)
    assert len(result.epochs) == 2 and result.best_accuracy >= result.accuracy_before
    assert quantized.holds(model)  # the model holds the best epoch's centroids
    for name, param in prunable_parameters(model).items():
        assert torch.equal(quantized.codes[name].indices, indices[name])  # no weight changed cluster
        assert torch.equal(param == 0, zeros[name])
        assert len(torch.unique(param[param != 0])) <= 4
        assert param.requires_grad  # unfrozen again
