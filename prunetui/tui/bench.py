"""What a flow may use of the workbench: the interface `WorkbenchScreen` gives the flows it composes.

The flows (tui/*_flow.py, JobRunner, Preview, RunsController, TypeAhead) and the screen's mixins are
typed against this Protocol, not against the screen, so that none of them imports the screen (nor the
app) and the imports of tui/ run one way: app -> workbench -> panes -> flows -> bench.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from prunetui.core.events import EpochEnd
    from prunetui.core.runs import RunRecord
    from prunetui.core.session import Session
    from prunetui.core.suggest import Suggestion
    from prunetui.tui.scan_curves import ScanCurves, Tolerance
    from prunetui.tui.stats import ModelStats


class Bench(Protocol):
    """The workbench as its flows see it. State (documented on WorkbenchScreen) is read and written here;
    the views follow it. `app` is for what only an app does: push a dialog, exit, the settings."""

    app: App
    session: Session
    # the state (WorkbenchScreen's reactives)
    busy: bool
    targets: dict[str, float]
    locked_layers: frozenset[str]
    pending_suggestion: Suggestion | None
    stats: ModelStats | None
    projected_mib: float | None
    curves: ScanCurves
    runs: list[RunRecord]
    epochs: list[EpochEnd]
    accuracy_before_finetune: float | None
    tolerance: Tolerance
    scan_grid: tuple[float, ...]
    selection: frozenset[str]
    layer_bits: dict[str, int]
    method: str
    recovery_marks: str
    # the flows, for a flow that hands on to another (typed Any: a flow's module imports this one)
    jobs: Any  # JobRunner
    model_flows: Any  # ModelFlows
    compound: Any  # CompoundFlow
    suggest: Any  # SuggestFlow
    recovery: Any  # RecoveryFlow
    runs_tab: Any  # RunsController
    profiles: Any  # ProfilesFlow
    preview: Any  # Preview
    selection_flow: Any  # SelectionFlow
    scan_settings: Any  # SensitivityFlow
    type_ahead: Any  # TypeAhead
    bits: Any  # BitsFlow
    speed: Any  # SpeedFlow

    @property
    def workdir(self) -> Path: ...
    @property
    def selected_layer(self) -> str | None: ...
    @property
    def job_title(self) -> str: ...
    @property
    def active_bindings(self) -> dict[str, Any]: ...

    def write_log(self, text: str, style: str = "") -> None: ...
    def show_error(self, text: str) -> None: ...
    def show_warning(self, text: str) -> None: ...
    def show_plot(self, tab_id: str) -> None: ...
    def shown(self, path: Path) -> str: ...
    def sync_targets(self) -> None: ...
    def set_targets(self, targets: dict[str, float]) -> None: ...
    def set_target(self, layer_name: str, value: float) -> None: ...
    def action_select(self, step: int) -> None: ...
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None: ...
    async def run_from_palette(self, action: str) -> None: ...
    # Textual's, of the screen
    def query_one(self, selector: Any, expect_type: Any = None) -> Any: ...
    def notify(self, message: str, **options: Any) -> None: ...
    def post_message(self, message: Any) -> bool: ...
    def call_after_refresh(self, callback: Any, *args: Any) -> bool: ...
    def run_worker(self, work: Any, **options: Any) -> Worker: ...
