"""The scan part of a session: where its scans are cached and under which key.

A scan is of the model in hand, by a method, on the data (its fingerprint: what the files hold), with
a grid and options (core.scan_cache.scan_key); a scan of a few units, or one cancelled half-way, serves
every later scan that asks for those units.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from prunetui.core.scan_cache import ScanCache, load_cached, scan_key
from prunetui.core.sensitivity import ScanOptions, ScanResult


@dataclass
class Scans:
    folder: Path | None = None  # None: scans are not cached
    data_key: str | None = None  # the data's fingerprint (or its spec); None: not cached

    def cache(
        self, model: nn.Module, method: str, sparsities: Sequence[float], options: ScanOptions
    ) -> ScanCache | None:
        if self.folder is None or self.data_key is None:
            return None
        key = scan_key(
            model,
            self.data_key,
            sparsities,
            options.eval_size,
            options.accel.amp,
            method,
            options.recalibrate,
        )
        return ScanCache(self.folder, key)

    def stored(
        self, model: nn.Module, method: str, sparsities: Sequence[float], options: ScanOptions | None = None
    ) -> ScanResult | None:
        """The cached scan of `model` by `method` with this grid and options, if one was stored."""
        cache = self.cache(model, method, sparsities, options or ScanOptions())
        return load_cached(cache) if cache is not None else None
