"""Export the pruned model: a checkpoint plain PyTorch loads, a side file, and the real size on disk.

A channel-pruned model is written as a channel checkpoint (core.lineage: every stage of kept channels +
the smaller state_dict, no pickled module), with the same `prunetui` record beside them: what the
weights hold (method, targets, the recipe of the run that made them), the dense size of the model as
first built, and the figures.

The `state_dict` keeps the model's state-dict metadata (`state_dict._metadata`: each module's `version`,
which some modules' `_load_from_state_dict` read: torchvision's MNASNet refuses a state_dict without
it, BatchNorm's `num_batches_tracked` rule reads it), so the documented plain-PyTorch recipe
`model.load_state_dict(torch.load(path, weights_only=True)["state_dict"])` reopens every model.
"""

import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w
import torch

from prunetui.core.atomic import storage_error, write_all
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
    saved["state_dict"] = with_metadata(saved["state_dict"], state.model.state_dict())
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


def with_metadata(state: dict[str, torch.Tensor], source: dict) -> "OrderedDict[str, torch.Tensor]":
    """`state` (same keys and order) as an OrderedDict carrying `source`'s state-dict metadata
    (`source._metadata`, {module prefix: {"version": int}}, as `nn.Module.state_dict` sets it; nothing
    when `source` has none). torch.save keeps it and `torch.load(weights_only=True)` restores it."""
    result = OrderedDict(state)
    metadata = getattr(source, "_metadata", None)
    if metadata is not None:
        result._metadata = OrderedDict((key, dict(value)) for key, value in metadata.items())  # type: ignore[attr-defined]
    return result


def pack_sparse(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """Each tensor with dim > 1 as {shape, bitmask (1 bit a weight), values (the nonzeros)}; the
    state-dict metadata kept (see `with_metadata`)."""
    packed: dict[str, object] = with_metadata({}, state)
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
    """The inverse of `pack_sparse`: the exact dense tensors back, and the state-dict metadata."""
    state: dict[str, torch.Tensor] = with_metadata({}, packed)
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
    """Write `path` and `path`.toml atomically, as one: both are written to temp files in their folder
    before either is renamed, so a failure (a full disk included) leaves both earlier files intact and no
    temp file behind. Raises UserError: a file exists and not `overwrite`; a write failed (one line naming
    the file and the reason)."""
    path = Path(path)
    side = side_file_path(path)
    if not overwrite and (path.exists() or side.exists()):
        raise UserError(
            f"{path if path.exists() else side} exists (choose another name or allow overwriting)"
        )
    data = checkpoint_dict(session, profile_name)
    sparse_bytes = serialized_bytes(data | {"state_dict": pack_sparse(data["state_dict"])})
    written: list[int] = []  # the checkpoint's bytes, for the side file staged after it

    def write_checkpoint(f) -> None:
        torch.save(data, f)
        written.append(f.tell())

    def write_side(f) -> None:
        f.write(side_file_toml(data, path.name, written[0], sparse_bytes))

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_all([(path, write_checkpoint, True), (side, write_side, False)])
    except OSError as e:
        raise storage_error(e, f"{path.name} and {side.name} are as they were") from None
    return Exported(path, side, written[0], sparse_bytes)
