"""The scan the app holds, as the table a suggestion is made from (goals and proposals: workflow.goals)."""

from prunetui.core.session import Session
from prunetui.core.suggest import ScanTable
from prunetui.tui.scan_curves import ScanCurves
from prunetui.workflow import suggesting


def scan_table(curves: ScanCurves, session: Session) -> ScanTable:
    """The layers scanned at every sparsity of the grid, with the session method's exact kept counts."""
    sparsities = curves.sparsities()
    rows = curves.complete_rows(sparsities)
    return suggesting.scan_table(
        session, sparsities=sparsities, base_accuracy=curves.base_accuracy, curves=rows
    )
