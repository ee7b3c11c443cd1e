"""The scan part of a session: where its scans are cached and under which key.

A scan is of the model in hand, by a method, on the data (its fingerprint: what the files hold), with
a grid and options (core.scan_cache.scan_key); a scan of a few units, or one cancelled half-way, serves
every later scan that asks for those units.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from prunetui.core.events import Report
from prunetui.core.model_state import ModelState
from prunetui.core.scan_cache import ScanCache, cached_scan, load_cached, scan_key
from prunetui.core.sensitivity import ScanOptions, ScanResult
from prunetui.errors import UserError


@dataclass
class Scans:
    state: ModelState
    folder: Path | None = None  # None: scans are not cached
    data_key: str | None = None  # the data's fingerprint (or its spec); None: not cached

    def scan(self, method, data, sparsities: Sequence[float], names: Sequence[str], report: Report, cancel,
             options: ScanOptions, launcher, base_accuracy: float | None, use_cache: bool) -> ScanResult:  # fmt: skip
        """The units `names` of the model in hand, each alone at each of `sparsities`, by `method`'s runner
        (over processes with a `launcher`); the units the cache holds are served from it."""
        if launcher is not None and options != ScanOptions():
            raise UserError(
                "scan options (eval size, amp, recalibration) are not available for distributed scans"
            )
        model = self.state.model
        run = method.scan_runner(self.state, data.train, options, launcher, cancel)
        cache = self.cache(model, method.name, sparsities, options) if use_cache else None
        return cached_scan(cache, model, data.eval, sparsities, names, report, cancel, base_accuracy, run)

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
