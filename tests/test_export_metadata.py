"""Exports that reopen any model: the state-dict metadata (`state_dict._metadata`, the module versions
torchvision's MNASNet reads when loading) is kept in fine-grained and channel exports, and prunetui reads
files with or without it (plain dicts, .safetensors, DataParallel's `module.` names)."""

from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from prunetui.core.export import export_checkpoint, pack_sparse, unpack_sparse
from prunetui.sources import open_model
from prunetui.workflow.opening import Request, open_session

SPEC = "torchvision:mnasnet0_5:10"
DATA = "random:8:3x32x32"


def mnasnet() -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.mnasnet0_5(weights=None, num_classes=10)
    for module in model.modules():  # statistics of a trained model, so BatchNorm is not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def outputs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(images)


def pruned(tmp_path: Path, method: str | None, count: int):
    session = open_session(Request(model=SPEC, data=DATA, method=method), workdir=tmp_path).session
    names = session.unit_names()
    for name in names[1 : 1 + count]:
        session.set_target(name, 0.5)
    session.prune()
    return session


def test_a_fine_grained_mnasnet_export_reopens_in_prunetui_and_plain_pytorch(tmp_path):
    session = pruned(tmp_path, None, 8)
    path = export_checkpoint(session, tmp_path / "fine.pt", "fine").path
    images = torch.randn(3, 3, 32, 32)
    expected = outputs(session.model, images)
    assert torch.equal(outputs(open_model(SPEC, str(path)).model, images), expected)
    plain = torchvision.models.mnasnet0_5(weights=None, num_classes=10)  # the README's recipe
    plain.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    assert torch.equal(outputs(plain, images), expected)


def test_a_channel_pruned_mnasnet_export_reopens_to_the_same_outputs(tmp_path):
    session = pruned(tmp_path, "channel", 6)
    path = export_checkpoint(session, tmp_path / "channel.pt", "channel").path
    assert torch.load(path, weights_only=True)["state_dict"]._metadata[""] == {"version": 2}
    images = torch.randn(3, 3, 32, 32)
    reopened = open_model(SPEC, str(path)).model
    assert sum(p.numel() for p in reopened.parameters()) < sum(p.numel() for p in mnasnet().parameters())
    assert torch.equal(outputs(reopened, images), outputs(session.model, images))


@pytest.mark.parametrize(
    "kind", ["state_dict", "plain dict", "safetensors", "DataParallel", "DataParallel plain dict"]
)
def test_mnasnet_weights_open_with_or_without_metadata(tmp_path, kind):
    model = mnasnet()
    state = (nn.DataParallel(model) if kind.startswith("DataParallel") else model).state_dict()
    path = tmp_path / ("w.safetensors" if kind == "safetensors" else "w.pt")
    if kind == "safetensors":
        save_file(dict(state), str(path))
    else:
        torch.save(dict(state) if kind.endswith("plain dict") else state, path)
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(outputs(open_model(SPEC, str(path)).model, images), outputs(model, images))


def test_sparse_packing_keeps_the_metadata():
    state = mnasnet().state_dict()
    unpacked = unpack_sparse(pack_sparse(state))
    assert unpacked._metadata == state._metadata
    assert all(torch.equal(unpacked[k], v) for k, v in state.items())
