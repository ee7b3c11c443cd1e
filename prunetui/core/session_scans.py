"""The sensitivity scans of a session: run on the model as it is now, cached by what it holds.
Mixed into core.session.Session."""

import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.core.events import Report, ignore
from prunetui.core.scan_cache import ScanCache, cached_scan, load_cached, scan_key
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, ScanResult, scan
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.distributed.launch import Rendezvous


class SessionScans:
    """Needs of the session: `model`, `origin`, `method`, `accuracy`, `scan_cache_folder`,
    `_require_data()`, `_launcher()` and `_scores()`."""

    scan_cache_folder: Path | None

    def scan(
        self,
        sparsities: Sequence[float] = DEFAULT_SPARSITIES,
        layers: Sequence[str] | None = None,
        report: Report = ignore,
        cancel: threading.Event | None = None,
        nproc: int = 1,
        rendezvous: "Rendezvous | None" = None,
        options: ScanOptions | None = None,
        use_cache: bool = True,
    ) -> ScanResult:
        """Scan the model as it is now (dense, or pruned and finetuned); over several processes with
        `nproc` > 1 or a `rendezvous`, the layers dealt to them. Layers already in the scan cache are
        served from it. On an evaluation subset (`options.eval_size`) the session's accuracy is kept."""
        data = self._require_data()
        options = options or ScanOptions()
        launcher = self._launcher(nproc, rendezvous)
        if launcher is not None and options != ScanOptions():
            raise UserError("scan options (eval size, amp) are not available for distributed scans")
        if self.structured:  # groups, not tensors: each group alone at each ratio (session_channel)
            return self.channel_scan(sparsities, layers, report, cancel, options, use_cache, launcher)
        scores = self._scores(self.model.state_dict(), cancel)  # of the weights as they are now
        if launcher is None:
            calibration = data.train if options.recalibrate else None
            run_scan = partial(scan, options=options, scores=scores, calibration=calibration)
        else:
            run_scan = partial(launcher.scan, scores=scores)
        # a recalibrated scan's base is the model recalibrated too, not the session's accuracy
        whole = options.eval_size is None and not options.recalibrate
        cache = self._scan_cache(sparsities, options) if use_cache else None
        result = cached_scan(
            cache,
            self.model,
            data.eval,
            sparsities,
            layers,
            report,
            cancel,
            self.accuracy if whole else None,
            run_scan,
        )
        if result.base_accuracy is not None and whole:
            self.accuracy = result.base_accuracy
        return result

    def stored_scan(
        self, sparsities: Sequence[float] = DEFAULT_SPARSITIES, options: ScanOptions | None = None
    ) -> ScanResult | None:
        """The cached scan of the model as it is now with this grid and options, if one was stored."""
        cache = self._scan_cache(sparsities, options or ScanOptions())
        return load_cached(cache) if cache is not None else None

    def _scan_cache(self, sparsities: Sequence[float], options: ScanOptions) -> ScanCache | None:
        if self.scan_cache_folder is None or self.origin.data_spec is None:
            return None
        key = scan_key(
            self.model,
            self.origin.data_fingerprint or self.origin.data_spec,
            sparsities,
            options.eval_size,
            options.accel.amp,
            self.method.name,
            options.recalibrate,
        )
        return ScanCache(self.scan_cache_folder, key)
