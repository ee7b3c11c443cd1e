"""The two LeNets of Deep Compression (Han, Mao & Dally, ICLR 2016), for 1 x 28 x 28 MNIST images, with
weights trained on `mnist5k`'s training split shipped in the package (scripts/train_lenets.py writes them).

- `lenet-300-100` (LeCun et al. 1998): fc1 784-300, fc2 300-100, fc3 100-10, ReLU between;
  266,610 parameters (1.02 MiB in fp32; Han's 1070 KB).
- `lenet5`, Caffe's version Han used (caffe/examples/mnist/lenet_train_test.prototxt): conv1 20 5x5,
  max-pool 2, conv2 50 5x5, max-pool 2, fc1 800-500, ReLU, fc2 500-10 (no ReLU after the convolutions,
  as in Caffe's); 431,080 parameters (1.64 MiB in fp32; Han's 1720 KB).
"""

from pathlib import Path

from torch import nn


class LeNet300100(nn.Module):
    """N x 1 x 28 x 28 -> N x 10 logits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc3(self.relu(self.fc2(x)))


class LeNet5(nn.Module):
    """Caffe's LeNet: N x 1 x 28 x 28 -> N x 10 logits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.conv2(self.pool(self.conv1(x))))
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


LENETS = {"lenet-300-100": LeNet300100, "lenet5": LeNet5}
WEIGHT_FILES = {"lenet-300-100": "lenet300100_weights.pt", "lenet5": "lenet5_weights.pt"}


def lenet_weights_path(spec: str) -> Path:
    """The trained weights shipped for `spec` (a state_dict; see scripts/train_lenets.py)."""
    return Path(__file__).with_name(WEIGHT_FILES[spec])
