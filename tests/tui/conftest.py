"""A tiny trained CNN on tiny data, so that jobs take milliseconds and key presses are not slowed."""

import time
from contextlib import contextmanager

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.runs import RunStore
from prunetui.core.scan_cache import scan_folder
from prunetui.core.session import Origin, Session, Splits
from prunetui.tui.app import PruneApp

MODEL_LABEL = "tiny"
LAYERS = ["conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"]


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv3(x)), 2)
        return self.fc(x.flatten(1))


def tiny_data() -> TensorDataset:
    """64 images of 1x8x8: four classes, each a faintly brighter quadrant in noise (~80% learnable)."""
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(64) % 4
    images = torch.rand(64, 1, 8, 8, generator=generator)
    for i, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        images[i, 0, row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] += 0.25
    return TensorDataset(images, labels)


class SlowBatches:
    """Batches that take a while: a job that runs long enough to press keys while it runs,
    without flooding the UI with a hundred epochs a second."""

    def __init__(self, batches, seconds: float = 0.05) -> None:
        self.batches = batches
        self.seconds = seconds

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            time.sleep(self.seconds)
            yield batch


def tiny_splits(slow: bool = False) -> Splits:
    dataset = tiny_data()
    train = DataLoader(dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(2))
    return Splits(train=SlowBatches(train) if slow else train, eval=DataLoader(dataset, batch_size=16))


@contextmanager
def one_torch_thread():
    """Two intra-op threads on a 2-core machine that also runs the UI thread were ~100x slower here.
    Put back afterwards: other tests compare against subprocesses with the default."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield


def train_tiny_net() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(15):
        for images, labels in tiny_splits().train:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def trained_state() -> dict[str, torch.Tensor]:
    """Trained once per test run: a few epochs put accuracy well above chance, so pruning shows."""
    with one_torch_thread():
        return train_tiny_net()


def make_session(
    state: dict[str, torch.Tensor], with_data: bool = True, slow: bool = False, workdir=None
) -> Session:
    """With a `workdir`, runs are recorded in it and scans cached there, as `prunetui` does in the cwd."""
    torch.manual_seed(0)
    model = TinyNet()
    model.load_state_dict(state)
    splits = tiny_splits(slow) if with_data else None
    if workdir is None:
        return Session(model, splits, label=MODEL_LABEL)
    session = Session(model, splits, MODEL_LABEL, Origin(data_spec="tiny"), RunStore(workdir))
    session.scans.folder = scan_folder(workdir)
    return session


@pytest.fixture
def session(trained_state) -> Session:
    return make_session(trained_state)


def make_app(session: Session, workdir, **kwargs) -> PruneApp:
    app = PruneApp(session, workdir=workdir, **kwargs)
    app.animation_level = "none"  # nothing animates: snapshots and timings stay deterministic
    return app


@pytest.fixture
def app(session, tmp_path) -> PruneApp:
    return make_app(session, tmp_path)


@pytest.fixture
def recording_app(trained_state, tmp_path) -> PruneApp:
    """Records its runs and caches its scans in tmp_path."""
    return make_app(make_session(trained_state, workdir=tmp_path), tmp_path)


@pytest.fixture
def slow_app(trained_state, tmp_path) -> PruneApp:
    """Its finetune epochs take ~0.2 s: long jobs to cancel, quit or interrupt."""
    return make_app(make_session(trained_state, slow=True), tmp_path)


async def wait_idle(pilot, timeout: float = 30.0) -> None:
    """Until the running job (the dense evaluation at start, say) has ended and its messages are handled."""
    deadline = time.monotonic() + timeout
    idle = 0  # idle twice in a row: a key held for after a job is typed again just after it ends
    await pilot.pause()
    while idle < 2:
        if pilot.app.workbench.busy:
            assert time.monotonic() < deadline, f"{pilot.app.workbench.job_title} did not end in {timeout} s"
            idle = 0
            await pilot.pause(0.02)
        else:
            idle += 1
            await pilot.pause()


async def wait_until(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await pilot.pause(0.02)
