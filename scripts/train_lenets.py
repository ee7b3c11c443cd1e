"""Train LeNet-300-100 and LeNet-5 on mnist5k's training split and write their shipped weights
(prunetui/sources/lenet300100_weights.pt, lenet5_weights.pt).

Deterministic: fixed seeds, one CPU thread, deterministic algorithms; a rerun writes the same bytes
(checked with sha256sum). Needs the mnist5k extra (pip install 'prunetui[mnist5k]'). Prints each model's
accuracy on the 1,000 held-out images.

    PYTHONPATH=. .venv/bin/python scripts/train_lenets.py   # or without PYTHONPATH after pip install -e .
"""

import time

import torch
from train_demo import accuracy, train  # the demo's loop (this script's folder is on sys.path)

from prunetui.sources.data import load_data
from prunetui.sources.lenet import LENETS, lenet_weights_path

SEED = 0
EPOCHS = 40
LEARNING_RATE = 1e-3
SHIFT = 2  # pixels an image moves at most in each direction while training


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for spec, build in LENETS.items():
        torch.manual_seed(SEED)
        data = load_data("mnist5k", batch_size=64)
        model = build()
        start = time.perf_counter()
        train(model, data.train, EPOCHS, LEARNING_RATE, SHIFT)
        state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
        torch.save(state, lenet_weights_path(spec))
        print(
            f"{spec}: trained {EPOCHS} epochs in {time.perf_counter() - start:.1f} s; "
            f"held-out accuracy {accuracy(model, data.eval):.2f}%; wrote {lenet_weights_path(spec)}"
        )


if __name__ == "__main__":
    main()
