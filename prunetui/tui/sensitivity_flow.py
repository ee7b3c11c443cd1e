"""The sensitivity scan's settings (S): the grid `s` scans at and the tolerated drop. A new grid shows
the stored scan of this model with that grid when there is one."""

from typing import TYPE_CHECKING

from prunetui.tui import jobs
from prunetui.tui.scan_curves import ScanCurves, Tolerance
from prunetui.tui.screens.scan_settings_dialog import ScanSettings, ScanSettingsDialog, grid_text

if TYPE_CHECKING:
    from prunetui.tui.app import PruneApp


class SensitivityFlow:
    def __init__(self, app: "PruneApp") -> None:
        self.app = app

    def ask(self) -> None:
        """The grid and the drop; a drop under one evaluation image (the lab's rule near 100%: nothing
        but no change is safe) is offered as 1 point instead."""
        tolerance, note = self.app.tolerance, ""
        curves = self.app.curves
        if curves.drop_below_one_image(tolerance):
            lab = tolerance.drop(curves.base_accuracy)
            note = f"1 offered: the lab's rule tolerates {lab:.2f} pt here, under one image (lab keeps it)"
            tolerance = Tolerance(1.0)
        current = ScanSettings(self.app.scan_grid, tolerance)
        self.app.push_screen(ScanSettingsDialog(current, note), self._chosen)

    def _chosen(self, settings: ScanSettings | None) -> None:
        if settings is None:
            return
        app = self.app
        app.tolerance = settings.tolerance
        base = app.curves.base_accuracy
        app.write_log(f"Sensitivity: {settings.tolerance.describe(base)} (the Safe column and the red marks)")
        if settings.grid != app.scan_grid:
            app.scan_grid = settings.grid
            app.write_log(f"Scan grid: {grid_text(settings.grid)} (s scans at these sparsities)")
            self.load_stored_scan()
        app.show_plot("sensitivity-tab")

    def load_stored_scan(self, keep_shown: bool = False) -> None:
        """The stored scan of the model as it is, by the method and grid now chosen, in a thread (the
        cache key fingerprints every weight); the curves are emptied meanwhile, unless `keep_shown`
        (after the model changed: the scan shown stays, marked as of the model before, until one of
        the model now is found)."""
        app = self.app
        if not keep_shown:
            app.curves = ScanCurves()
        app.run_worker(self._load, group="stored-scan", exclusive=True, thread=True, exit_on_error=False)

    def _load(self) -> None:
        result = jobs.last_scan(self.app.session, self.app.scan_grid)
        if result is not None:
            self.app.post_message(result)
