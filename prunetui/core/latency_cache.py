"""The latency model's cache: `<state folder>/latency/<key>.json` (core.runs.state_folder; beside the scan
cache), so a second plan of the same model on the same device reads its timings instead of measuring.

The key covers everything the timings depend on: the device, torch version, runtime, batches, dtype,
threads, alignment and width grid (core.latency_model.Setting), and the model's class, structure and input
shape; not its weights (latency does not depend on their values). Written atomically; a file that cannot
be read is measured again, one that cannot be written is skipped (the cache only saves time).
"""

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from prunetui.core.atomic import write_atomic
from prunetui.core.channel import ChannelGroup
from prunetui.core.events import Report, ignore
from prunetui.core.latency_model import CALIBRATION, LatencyTable, Setting, measure_table
from prunetui.core.timers import Timer

LATENCY_DIR = "latency"


def table_key(base: nn.Module, example: torch.Tensor, setting: Setting) -> str:
    """The cache file's name: the setting and the model's class, structure and input shape (module
    docstring); weights are not part of it."""
    fields = {
        "setting": asdict(setting),
        "model": f"{type(base).__module__}.{type(base).__qualname__}",
        "structure": repr(base),
        "input": list(example.shape[1:]),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LatencyCache:
    """`<state folder>/latency/`; None folder: nothing cached."""

    folder: Path | None

    def load(self, key: str) -> LatencyTable | None:
        if self.folder is None:
            return None
        try:
            return LatencyTable.from_json(json.loads((self.folder / f"{key}.json").read_text("utf-8")), key)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def save(self, table: LatencyTable) -> None:
        """Atomically; a cache that cannot be written is skipped (it only saves time)."""
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / f"{table.key}.json", lambda f: json.dump(table.as_json(), f))
        except OSError:
            pass


def latency_table(
    base: nn.Module,
    example: torch.Tensor,
    groups: Sequence[ChannelGroup],
    setting: Setting,
    timer: Timer,
    cache: LatencyCache,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    sweeps: int = 1,
    calibration: int = CALIBRATION,
) -> LatencyTable:
    """The cached table for this model and setting, or measured now (`sweeps` per group, `calibration`
    whole profiles) and cached."""
    key = table_key(base, example, setting)
    stored = cache.load(key)
    if stored is not None and set(stored.groups) == {g.name for g in groups}:
        return stored
    table = measure_table(base, example, groups, setting, timer, report, cancel, sweeps, calibration)
    table.key = key
    cache.save(table)
    return table
