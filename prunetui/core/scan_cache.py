"""Scan results kept in `<state folder>/scans/<key>.json` (core.runs.state_folder: `.prunetui/` unless
--state-dir or PRUNETUI_STATE_DIR says otherwise), so the same scan is instant the second time.

The key covers everything the numbers depend on: the model's class, structure and every tensor of its
state (weights and BatchNorm statistics), the data's fingerprint (what the files hold, not what they are
called: sources/fingerprints.py), the pruning method, the evaluation subset, the sparsity grid and the
autocast mode. Rows are stored layer by layer, so a scan of a few layers, or one cancelled half-way,
serves every later scan that asks for those layers, and only the missing ones are computed.
"""

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from prunetui.core.atomic import write_atomic
from prunetui.core.events import Progress, Report, ScanPoint
from prunetui.core.layers import prunable_parameters
from prunetui.core.runs import STATE_DIR, fingerprint
from prunetui.core.sensitivity import ScanResult


@dataclass(frozen=True)
class ScanJob:
    """One scan a runner does: `layers` of `model` alone at each of `sparsities`, evaluated on `batches`;
    `base_accuracy` when known (on the same images). The runners (core.sensitivity for fine-grained
    methods, core.methods.channel, prunetui.distributed) all take one."""

    model: nn.Module
    batches: Iterable
    sparsities: Sequence[float]
    layers: Sequence[str] | None
    report: Report
    cancel: threading.Event | None
    base_accuracy: float | None


ScanRunner = Callable[[ScanJob], ScanResult]


@dataclass(frozen=True)
class ScanCache:
    folder: Path
    key: str

    @property
    def file(self) -> Path:
        return self.folder / f"{self.key}.json"


def scan_folder(workdir: str | Path = ".", state_dir: str | Path | None = None) -> Path:
    """`<state_dir>/scans`; `state_dir` defaults to `<workdir>/.prunetui`."""
    return (Path(state_dir) if state_dir is not None else Path(workdir) / STATE_DIR) / "scans"


def scan_key(
    model: nn.Module,
    data: str,
    sparsities: Sequence[float],
    eval_size: int | None,
    amp: str | None,
    method: str = "magnitude",
    recalibrate: bool = False,
) -> str:
    """The cache file's name for a scan of `model` on `data` (the data's fingerprint; its spec when
    no fingerprint is known) with these settings. A scan measured after BatchNorm recalibration is
    another scan (`recalibrate`; keys of plain scans are those they always were)."""
    settings = {
        "method": method,
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "structure": repr(model),
        "state": fingerprint(model.state_dict()),
        "data": data,
        "eval_size": eval_size,
        "sparsities": [float(s) for s in sparsities],
        "amp": amp,
    }
    if recalibrate:
        settings["recalibrate"] = True
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def load_cached(cache: ScanCache) -> ScanResult | None:
    """The stored result, or None when there is none or it cannot be read (then it is recomputed)."""
    try:
        stored = json.loads(cache.file.read_text(encoding="utf-8"))
        return ScanResult(**stored, cached=True)
    except (OSError, ValueError, TypeError):
        return None


def save_cached(cache: ScanCache, result: ScanResult) -> None:
    """Written atomically; a cache that cannot be written is skipped, never an error."""
    stored = {
        "sparsities": result.sparsities,
        "base_accuracy": result.base_accuracy,
        "layers": result.layers,
        "path": result.path,
        "images": result.images,
    }
    try:
        cache.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(cache.file, lambda f: json.dump(stored, f))
    except OSError:
        pass  # the cache only saves time: a scan that cannot be stored (full disk, read-only) still counts


def cached_scan(
    cache: ScanCache | None,
    model: nn.Module,
    batches: Iterable,
    sparsities: Sequence[float],
    layers: Sequence[str] | None,
    report: Report,
    cancel: threading.Event | None,
    base_accuracy: float | None,
    run: ScanRunner,
) -> ScanResult:
    """`run(ScanJob)` for the layers `cache` does not hold; the others are reported from it as if
    scanned. Whatever finished is stored, even when the scan was cancelled."""
    if cache is None:
        return run(ScanJob(model, batches, sparsities, layers, report, cancel, base_accuracy))
    started = time.perf_counter()
    names = list(layers) if layers is not None else list(prunable_parameters(model))
    stored = load_cached(cache) or ScanResult([float(s) for s in sparsities], None)
    hits = {name: stored.layers[name] for name in names if name in stored.layers}
    _replay(hits, stored.sparsities, report)
    missing = [name for name in names if name not in hits]
    base = base_accuracy if base_accuracy is not None else stored.base_accuracy
    if missing:
        fresh = run(ScanJob(model, batches, sparsities, missing, report, cancel, base))
    else:
        fresh = ScanResult(stored.sparsities, base, path=stored.path, images=stored.images)
        report(Progress("scan", len(names), len(names)))
    rows = hits | fresh.layers
    if fresh.layers:
        stored.layers |= fresh.layers
        stored.base_accuracy, stored.images, stored.path = fresh.base_accuracy, fresh.images, fresh.path
        save_cached(cache, stored)
    return ScanResult(
        sparsities=stored.sparsities,
        base_accuracy=fresh.base_accuracy,
        layers={name: rows[name] for name in names if name in rows},
        seconds=time.perf_counter() - started,
        cancelled=fresh.cancelled,
        path=fresh.path,
        images=fresh.images or stored.images,
        cached=not missing,
        memory=fresh.memory,
    )


def _replay(rows: dict[str, list[float]], sparsities: list[float], report: Report) -> None:
    for name, accuracies in rows.items():
        for sparsity, accuracy in zip(sparsities, accuracies, strict=True):
            report(ScanPoint(name, sparsity, accuracy))
