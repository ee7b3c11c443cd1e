"""The demo model: a small VGG-style CNN for scikit-learn's 8x8 digits, with trained weights shipped."""

from pathlib import Path

from prunetui.sources.vgg import VGG

# Layer sizes span 144 (conv0) to 73,728 (conv4) weights, so the sensitivity curves and the
# parameter chart have something to show.
DEMO_ARCH: list[int | str] = [16, 32, "M", 64, 64, "M", 128]


class DemoNet(VGG):
    """1x8x8 grayscale in, 10 classes out; same code shape and naming as the lab's VGG."""

    def __init__(self) -> None:
        super().__init__(DEMO_ARCH, in_channels=1, num_classes=10)


def demo_weights_path() -> Path:
    """The trained weights shipped in the package (a state_dict, see scripts/train_demo.py)."""
    return Path(__file__).with_name("demo_weights.pt")
