"""Train the demo model on the digits train split and write prunetui/sources/demo_weights.pt.

Deterministic: fixed seeds, one CPU thread, deterministic algorithms; a rerun writes the same weights.
Prints the test accuracy and a sensitivity table (each layer alone magnitude-pruned, the lab's rule).

    PYTHONPATH=. .venv/bin/python scripts/train_demo.py   # or without PYTHONPATH after pip install -e .
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from prunetui.sources.data import load_data
from prunetui.sources.demo import DemoNet, demo_weights_path

SEED = 0
EPOCHS = 40
LEARNING_RATE = 3e-3
SPARSITIES = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def shifted(images: torch.Tensor, generator: torch.Generator, shift: int = 1) -> torch.Tensor:
    """Each image moved by -shift..shift pixels in each direction (the background is 0)."""
    size = images.shape[-1]
    padded = F.pad(images, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (len(images), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets)])


def train(model: nn.Module, loader, epochs: int = EPOCHS, lr: float = LEARNING_RATE, shift: int = 1) -> None:
    """Adam, cosine over every step, each batch shifted (scripts/train_lenets.py trains the same way)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(loader))
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            loss = F.cross_entropy(model(shifted(images, generator, shift)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()


@torch.inference_mode()
def accuracy(model: nn.Module, loader: torch.utils.data.DataLoader) -> float:
    correct = total = 0
    for images, labels in loader:
        correct += int((model(images).argmax(1) == labels).sum())
        total += len(labels)
    return 100.0 * correct / total


@torch.inference_mode()
def magnitude_prune_(weight: torch.Tensor, sparsity: float) -> None:
    """The lab's fine-grained rule: zero the round(numel * s) smallest magnitudes (ties included)."""
    k = round(weight.numel() * sparsity)
    if k == 0:
        return
    threshold = weight.abs().flatten().kthvalue(k).values
    weight.mul_(weight.abs() > threshold)


def sensitivity_table(model: nn.Module, loader: torch.utils.data.DataLoader) -> list[str]:
    dense = {name: p.detach().clone() for name, p in model.named_parameters()}
    lines = ["layer".ljust(24) + "params".rjust(8) + "".join(f"{s:>7.1f}" for s in SPARSITIES)]
    for name, param in model.named_parameters():
        if param.dim() <= 1:
            continue
        row = []
        for sparsity in SPARSITIES:
            magnitude_prune_(param, sparsity)
            row.append(accuracy(model, loader))
            with torch.no_grad():
                param.copy_(dense[name])
        lines.append(name.ljust(24) + f"{param.numel():>8}" + "".join(f"{a:>7.1f}" for a in row))
    return lines


def main() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = load_data("digits", batch_size=64)
    model = DemoNet()
    start = time.perf_counter()
    train(model, data.train)
    seconds = time.perf_counter() - start
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    torch.save(state, demo_weights_path())
    print(f"trained {EPOCHS} epochs in {seconds:.1f} s; wrote {demo_weights_path()}")
    print(f"test accuracy {accuracy(model, data.eval):.2f}%")
    print("\n".join(sensitivity_table(model, data.eval)))


if __name__ == "__main__":
    main()
