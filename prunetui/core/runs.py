"""Run records: one small JSON file per prune or finetune in `<state folder>/runs/`, written atomically.

The state folder (run records, resume states, scan caches) is `.prunetui/` in the working directory,
unless `--state-dir DIR` or the environment variable PRUNETUI_STATE_DIR names another (`state_folder`):
a read-only working directory (a shared dataset mount, a container) keeps its state elsewhere.
"""

import errno
import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from prunetui.core.atomic import NOT_WRITABLE, write_atomic
from prunetui.errors import UserError

STATE_DIR = ".prunetui"
STATE_DIR_ENV = "PRUNETUI_STATE_DIR"
STATE_DIR_HINT = f"keep run records and caches elsewhere with --state-dir DIR (or {STATE_DIR_ENV}=DIR)"


@dataclass(frozen=True)
class Origin:
    """Where the model and data came from, as the user named them: recorded in every run. The data's
    fingerprint (what it is, whatever its name: sources/fingerprints.py) keys the scan cache."""

    data_spec: str | None = None
    checkpoint: str | None = None
    data_fingerprint: str | None = None


@dataclass
class RunRecord:
    """What one prune or finetune did, enough to compare runs and to resume an interrupted one."""

    id: str
    name: str  # the profile's name, "+ft" added for a finetune; the user may rename it
    kind: str  # "prune" or "finetune"
    model: str  # the model's label, e.g. "vgg-cifar"
    model_state: str  # fingerprint of the dense weights the run started from
    profile: dict[str, float]
    dense_size_mib: float
    sparse_size_mib: float
    percent_of_dense: float
    started: str
    status: str = "unfinished"  # "unfinished" until it ends: "finished", "cancelled" or "failed"
    data: str | None = None
    device: str = "cpu"
    checkpoint: str | None = None  # the checkpoint the model was opened from
    parent: str | None = None  # id of the run whose weights this one continued from
    accuracy_dense: float | None = None
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    epochs: list[dict] = field(default_factory=list)  # [{epoch, accuracy, best}]
    epochs_planned: int = 0
    lr: float | None = None
    seconds: float = 0.0
    resume_file: str | None = None  # weights + optimizer after the last completed epoch
    error: str | None = None
    method: str = "magnitude"  # the core.methods criterion that made the masks
    data_fingerprint: str | None = None  # what the data held (sources.fingerprints), not its name
    start: str = "dense"  # a prune: "dense" (restored the dense weights first) or "current" (pruned further)
    note: str = ""  # the user's words about the run (`n` in the Runs tab)
    accuracy_recalibrated: float | None = None  # after BatchNorm recalibration (core.recalibrate)
    # a finetune's recovery options: "oneshot" or "agp" (the masks grown to `profile` while training),
    # and the teacher's settings when it distilled from the dense model ({temperature, alpha}, else None)
    schedule: str = "oneshot"
    distill: dict | None = None
    # measured cost (core.run_cost.COST_KEYS: macs_dense, macs, params_dense, params,
    # latency_ms_dense, latency_ms; latency_batch, latency_threads, latency_device); {} when not measured
    cost: dict = field(default_factory=dict)
    # what replays the run (prunetui replay): the recipe it ran (core.recipe, versioned, its seed filled
    # in), the environment (torch version, device, threads), fingerprints of the masks and the weights it
    # ended with, and where its weights were written ({"checkpoint": path, "onnx": path})
    recipe: dict | None = None
    environment: dict = field(default_factory=dict)
    masks_fingerprint: str | None = None
    weights_fingerprint: str | None = None
    weights: dict = field(default_factory=dict)
    # quantization after pruning (core.quantize): {kind, bits: {layer: bits}, accuracy_quantized,
    # accuracy_centroids, epochs: [...]}, None when not quantized; the files its weights were written to,
    # measured ({path: bytes}, os.path.getsize), and the dense fp32 file's bytes (core.compressed)
    quantization: dict | None = None
    bytes_on_disk: dict = field(default_factory=dict)
    dense_file_bytes: int | None = None
    onnx_int8: dict | None = None  # the int8 ONNX model's check and latency (core.onnx_int8)

    @property
    def accuracy_change(self) -> float | None:
        """Of the weights the run left against dense: finetuned, else BN-recalibrated, else as pruned."""
        final = next(
            (
                a
                for a in (self.accuracy_after, self.accuracy_recalibrated, self.accuracy_before)
                if a is not None
            ),
            None,
        )
        if final is None or self.accuracy_dense is None:
            return None
        return final - self.accuracy_dense


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """A short hash of tensor names, shapes and bytes: the same weights give the same fingerprint."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def state_folder(
    option: str | os.PathLike | None = None,
    workdir: str | os.PathLike = ".",
    environ: Mapping[str, str] = os.environ,
) -> Path:
    """Where run records and scan caches live: `option` (--state-dir), else `environ[PRUNETUI_STATE_DIR]`
    (ignored when empty), else `<workdir>/.prunetui`. A relative path is relative to the current
    directory, as every path on the command line."""
    chosen = option if option is not None else environ.get(STATE_DIR_ENV) or None
    return Path(chosen) if chosen is not None else Path(workdir) / STATE_DIR


def new_run_id() -> str:
    """Sortable by time, unique enough for one working directory: 20261125-142233-9f1c."""
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RunStore:
    """The runs of one working directory: `<state folder>/runs/<id>.json` (+ `<id>.pt` to resume).

    `state_dir`: the state folder (see `state_folder`); default `<workdir>/.prunetui`."""

    def __init__(self, workdir: str | Path = ".", state_dir: str | Path | None = None):
        self.state_dir = Path(state_dir) if state_dir is not None else Path(workdir) / STATE_DIR
        self.folder = self.state_dir / "runs"
        self.unreadable: list[Path] = []  # records the last load_all could not read

    def save(self, record: RunRecord) -> Path:
        """Write the record atomically. Raises UserError (one line) when the disk or folder refuses it;
        the record's previous version is then unchanged."""
        text = json.dumps(asdict(record), indent=1)
        return self._write(self.folder / f"{record.id}.json", lambda f: f.write(text), binary=False)

    def _write(self, path: Path, write, binary: bool) -> Path:
        """Atomic, so a full disk or a kill keeps the previous version; the failure is the user's to see:
        a folder that cannot be written (read-only, not a folder) is named with the way out (--state-dir)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return write_atomic(path, write, binary=binary)
        except OSError as e:
            if e.errno in NOT_WRITABLE or e.errno == errno.EEXIST:  # EEXIST: a file where a folder goes
                raise UserError(
                    f"cannot write run records in {self.state_dir}: {e.strerror or e}; {STATE_DIR_HINT}"
                ) from None
            reason = e.strerror or str(e)
            raise UserError(
                f"cannot save run state {path}: {reason}; any earlier version is unchanged"
            ) from None

    def load_all(self, model_state: str | None = None) -> list[RunRecord]:
        """Every readable record, oldest first; only those of `model_state` when given.

        A file that cannot be read (hand-edited, from another version) is listed in `unreadable`
        for the front end to mention, and the other records are still returned.
        """
        records, self.unreadable = [], []
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = RunRecord(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                self.unreadable.append(path)
                continue
            if model_state is None or record.model_state == model_state:
                records.append(record)
        return sorted(records, key=lambda r: r.started)

    def resume_path(self, record: RunRecord) -> Path:
        return self.folder / f"{record.id}.pt"

    def save_resume_state(self, record: RunRecord, state: dict) -> None:
        """Weights, masks' layers and optimizer after an epoch, so a killed run can go on from there.
        Raises UserError as `save`; the previous epoch's state is then unchanged."""
        path = self._write(self.resume_path(record), lambda f: torch.save(state, f), binary=True)
        record.resume_file = path.name

    def drop_resume_state(self, record: RunRecord) -> None:
        self.resume_path(record).unlink(missing_ok=True)
        record.resume_file = None


def elapsed_since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
