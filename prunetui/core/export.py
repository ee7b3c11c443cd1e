"""Export the pruned model as a checkpoint plain PyTorch loads (weights_only=True)."""

from pathlib import Path

import torch

from prunetui.core.atomic import write_atomic
from prunetui.core.session import Session
from prunetui.errors import UserError


def checkpoint_dict(session: Session, profile_name: str) -> dict:
    """`state_dict` loads into the same architecture; `prunetui` records what was done to it."""
    size = session.current_size()
    return {
        "state_dict": {k: v.detach().cpu() for k, v in session.model.state_dict().items()},
        "prunetui": {
            "model": session.label,
            "profile": profile_name,
            "sparsity": dict(session.targets),
            "dense_size_mib": session.dense_size,
            "sparse_size_mib": size,
            "percent_of_dense": session.percent(size),
            "accuracy": session.accuracy,
        },
    }


def export_checkpoint(session: Session, path: str | Path, profile_name: str = "custom") -> Path:
    """Write atomically: a failure leaves any earlier file at `path` intact."""
    data = checkpoint_dict(session, profile_name)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, lambda f: torch.save(data, f), binary=True)
    except OSError as e:
        raise UserError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
