"""Train LeNet-300-100 and LeNet-5 on mnist5k's training split and write their shipped weights
(prunetui/sources/lenet300100_weights.pt, lenet5_weights.pt).

Deterministic: fixed seeds, one CPU thread, deterministic algorithms; a rerun writes the same bytes
(checked with sha256sum). Needs the mnist5k extra (pip install 'prunetui[mnist5k]'). Prints each model's
accuracy on the 1,000 held-out images.

    PYTHONPATH=. .venv/bin/python scripts/train_lenets.py   # or without PYTHONPATH after pip install -e .
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from prunetui.sources.data import load_data
from prunetui.sources.lenet import LENETS, lenet_weights_path

SEED = 0
EPOCHS = 40
LEARNING_RATE = 1e-3
SHIFT = 2  # pixels an image moves at most in each direction while training


def shifted(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by -SHIFT..SHIFT pixels in each direction (the background is 0)."""
    size = images.shape[-1]
    padded = F.pad(images, (SHIFT, SHIFT, SHIFT, SHIFT))
    offsets = torch.randint(0, 2 * SHIFT + 1, (len(images), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets)])


def train(model: nn.Module, loader) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS * len(loader))
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for images, labels in loader:
            loss = F.cross_entropy(model(shifted(images, generator)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()


@torch.inference_mode()
def accuracy(model: nn.Module, loader) -> float:
    correct = total = 0
    for images, labels in loader:
        correct += int((model(images).argmax(1) == labels).sum())
        total += len(labels)
    return 100.0 * correct / total


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for spec, build in LENETS.items():
        torch.manual_seed(SEED)
        data = load_data("mnist5k", batch_size=64)
        model = build()
        start = time.perf_counter()
        train(model, data.train)
        state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
        torch.save(state, lenet_weights_path(spec))
        print(
            f"{spec}: trained {EPOCHS} epochs in {time.perf_counter() - start:.1f} s; "
            f"held-out accuracy {accuracy(model, data.eval):.2f}%; wrote {lenet_weights_path(spec)}"
        )


if __name__ == "__main__":
    main()
