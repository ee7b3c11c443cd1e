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


def test_export_records_what_the_weights_hold_not_targets_typed_since(model, tmp_path):
    session = Session(model, label="tiny")
    session.set_target("3.weight", 0.75)
    session.prune()
    session.set_target("3.weight", 0.2)  # typed after the prune: the weights do not hold it
    session.set_target("0.weight", 0.5)
    exported = export_checkpoint(session, tmp_path / "a.pt", "mine")
    assert load_profile(exported.side_file).sparsity == {"3.weight": 0.75}
    session.reset()
    dense = export_checkpoint(session, tmp_path / "dense.pt", "mine")
    assert load_profile(dense.side_file).sparsity == {}
    assert torch.load(dense.path, weights_only=True)["prunetui"]["sparsity"] == {}


def test_saved_files_are_readable_by_others_as_the_umask_says(model, tmp_path):
    """mkstemp makes 0600 files; a profile or an export on a shared box follows the umask."""
    import os

    from prunetui.core.atomic import write_atomic

    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "p.toml", lambda f: f.write("x"))
        assert path.stat().st_mode & 0o777 == 0o644
        os.chmod(path, 0o600)  # an existing file keeps its own mode
        write_atomic(path, lambda f: f.write("y"))
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
