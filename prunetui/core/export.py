"""Export the pruned model: a checkpoint plain PyTorch loads, a side file, and the real size on disk.

A channel-pruned model is written as a channel checkpoint (core.lineage: every stage of kept channels +
the smaller state_dict, no pickled module), with the same `prunetui` record beside them: what the
weights hold (method, targets, the recipe of the run that made them), the dense size of the model as
first built, and the figures."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w
import torch

from prunetui.core.atomic import write_atomic
from prunetui.core.lineage import channel_checkpoint
from prunetui.core.session import Session
from prunetui.errors import UserError


@dataclass(frozen=True)
class Exported:
    path: Path
    side_file: Path
    dense_bytes: int  # the checkpoint as written: every weight stored, zeros included
    sparse_bytes: int  # the same weights as bitmask + nonzero values (what a sparse format saves)


def checkpoint_dict(session: Session, profile_name: str) -> dict:
    """`state_dict` loads into the same architecture; `prunetui` records what was done to it."""
    state, run = session.state, session.current_run
    size = state.current_size()
    if state.all_stages:  # kept indices + the smaller state_dict: `rebuild` replays them
        saved = channel_checkpoint(state.all_stages, state.model)
    else:
        saved = {"state_dict": {k: v.detach().cpu() for k, v in state.model.state_dict().items()}}
    return saved | {
        "prunetui": {
            "model": session.label,
            "profile": profile_name,
            # what the weights hold: the run that made them, not targets typed since
            "method": run.method if run is not None else session.method.name,
            "sparsity": dict(run.profile) if run is not None else {},
            "dense_size_mib": state.dense_size,  # of the model as first built, before any channel stage
            "sparse_size_mib": size,
            "percent_of_dense": state.percent(size),
            "accuracy": session.accuracy,
            "accuracy_dense": session.dense_accuracy,
            "run": run.id if run is not None else None,
            "recipe": run.recipe if run is not None else None,
            **{k: v for k, v in session.run_cost().items() if v is not None},
        },
    }


def pack_sparse(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """Each tensor with dim > 1 as {shape, bitmask (1 bit a weight), values (the nonzeros)}."""
    packed: dict[str, object] = {}
    for key, tensor in state.items():
        if tensor.dim() < 2:
            packed[key] = tensor
            continue
        flat = tensor.reshape(-1)
        nonzero = flat != 0
        bits = torch.from_numpy(np.packbits(nonzero.numpy()))
        packed[key] = {"shape": list(tensor.shape), "bitmask": bits, "values": flat[nonzero].clone()}
    return packed


def unpack_sparse(packed: dict[str, object]) -> dict[str, torch.Tensor]:
    """The inverse of `pack_sparse`: the exact dense tensors back."""
    state = {}
    for key, item in packed.items():
        if isinstance(item, torch.Tensor):
            state[key] = item
            continue
        numel = int(np.prod(item["shape"]))
        nonzero = torch.from_numpy(np.unpackbits(item["bitmask"].numpy(), count=numel).astype(bool))
        flat = torch.zeros(numel, dtype=item["values"].dtype)
        flat[nonzero] = item["values"]
        state[key] = flat.reshape(item["shape"])
    return state


def serialized_bytes(obj: object) -> int:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def side_file_toml(data: dict, exported_name: str, dense_bytes: int, sparse_bytes: int) -> str:
    """A profile file (`o` opens it) with the run's figures in a [run] table."""
    info = data["prunetui"]
    profile_keys = ("profile", "sparsity", "model", "method", "recipe")
    figures = {k: v for k, v in info.items() if k not in profile_keys and v is not None}
    return tomli_w.dumps(
        {
            "name": info["profile"],
            "method": info["method"],
            "model": info["model"],
            "description": f"exported with {exported_name}",
            "sparsity": {k: v for k, v in info["sparsity"].items() if v > 0},
            "run": figures | {"file_bytes_dense": dense_bytes, "file_bytes_sparse": sparse_bytes},
        }
    )


def side_file_path(path: Path) -> Path:
    """Where the profile and figures of an export go: beside the checkpoint, `.toml` appended."""
    return path.with_name(path.name + ".toml")


def export_checkpoint(
    session: Session, path: str | Path, profile_name: str = "custom", overwrite: bool = False
) -> Exported:
    """Write `path` and `path`.toml atomically; a failure leaves earlier files intact."""
    path = Path(path)
    side = side_file_path(path)
    if not overwrite and (path.exists() or side.exists()):
        raise UserError(
            f"{path if path.exists() else side} exists (choose another name or allow overwriting)"
        )
    data = checkpoint_dict(session, profile_name)
    sparse_bytes = serialized_bytes(data | {"state_dict": pack_sparse(data["state_dict"])})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: torch.save(data, f), binary=True)
        dense_bytes = path.stat().st_size
        text = side_file_toml(data, path.name, dense_bytes, sparse_bytes)
        write_atomic(side, lambda f: f.write(text))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    return Exported(path, side, dense_bytes, sparse_bytes)
