"""The sensitivity scan's settings (S): the grid `s` scans at and the tolerated drop. A new grid shows
the stored scan of this model with that grid when there is one."""

from typing import TYPE_CHECKING

from prunetui.tui import jobs
from prunetui.tui.scan_curves import ScanCurves, Tolerance
from prunetui.tui.screens.scan_settings_dialog import ScanSettings, ScanSettingsDialog, grid_text

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


class SensitivityFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench

    def ask(self) -> None:
        """The grid and the drop; a drop under one evaluation image (the lab's rule near 100%: nothing
        but no change is safe) is offered as 1 point instead."""
        tolerance, note = self.bench.tolerance, ""
        curves = self.bench.curves
        if curves.drop_below_one_image(tolerance):
            lab = tolerance.drop(curves.base_accuracy)
            note = f"1 offered: the lab's rule tolerates {lab:.2f} pt here, under one image (lab keeps it)"
            tolerance = Tolerance(1.0)
        current = ScanSettings(self.bench.scan_grid, tolerance)
        self.bench.app.push_screen(ScanSettingsDialog(current, note), self._chosen)

    def _chosen(self, settings: ScanSettings | None) -> None:
        if settings is None:
            return
        bench = self.bench
        bench.tolerance = settings.tolerance
        base = bench.curves.base_accuracy
        bench.write_log(f"Sensitivity: {settings.tolerance.describe(base)} (the Safe column and the red marks)")
        if settings.grid != bench.scan_grid:
            bench.scan_grid = settings.grid
            bench.write_log(f"Scan grid: {grid_text(settings.grid)} (s scans at these sparsities)")
            self.load_stored_scan()
        bench.show_plot("sensitivity-tab")

    def load_stored_scan(self, keep_shown: bool = False) -> None:
        """The stored scan of the model as it is, by the method and grid now chosen, in a thread (the
        cache key fingerprints every weight); the curves are emptied meanwhile, unless `keep_shown`
        (after the model changed: the scan shown stays, marked as of the model before, until one of
        the model now is found)."""
        bench = self.bench
        if not keep_shown:
            bench.curves = ScanCurves()
        bench.run_worker(self._load, group="stored-scan", exclusive=True, thread=True, exit_on_error=False)

    def _load(self) -> None:
        result = jobs.last_scan(self.bench.session, self.bench.scan_grid)
        if result is not None:
            self.bench.post_message(result)
