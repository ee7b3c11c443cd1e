import torch

from prunetui.core.export import export_checkpoint, pack_sparse, serialized_bytes, unpack_sparse
from prunetui.core.profile import load_profile
from prunetui.core.session import Session


def test_sparse_packing_round_trips_exactly(model):
    session = Session(model)
    session.set_target("3.weight", 0.9)
    session.prune()
    state = model.state_dict()
    unpacked = unpack_sparse(pack_sparse(state))
    assert all(torch.equal(unpacked[k], v) for k, v in state.items())
    assert serialized_bytes(pack_sparse(state)) < serialized_bytes(state)


def test_export_loads_into_plain_pytorch_and_side_file_is_a_profile(model, tmp_path):
    session = Session(model, label="tiny")
    session.set_target("3.weight", 0.75)
    session.prune()
    exported = export_checkpoint(session, tmp_path / "tiny.pt", "mine")
    saved = torch.load(exported.path, weights_only=True)
    fresh = type(model)(*model.children())  # same architecture
    fresh.load_state_dict(saved["state_dict"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in fresh.state_dict().items())
    assert exported.dense_bytes == exported.path.stat().st_size
    profile = load_profile(exported.side_file)
    assert profile.sparsity == {"3.weight": 0.75} and profile.model == "tiny" and profile.name == "mine"
