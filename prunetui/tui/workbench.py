"""The workbench: the screen that owns the work (a layer table, plots, a log, and keys that drive a core
Session), as posting's MainScreen owns its collection while its app keeps the settings.

Its state is the documented reactives below; the panes follow them (`data_bind` for the layer table and
the header, `watch_*` for the plots) instead of being told to redraw. The steps live in small classes the
screen composes (tui.panes.attach_flows): JobRunner (one job at a time), ModelFlows (scan, prune,
finetune, reset), SuggestFlow, RunsController, ProfilesFlow (profiles and export), Preview (projected
size) and the rest; each gets the screen as a `tui.bench.Bench`, the interface it may use. Mixed in:
KeyActions (each key to one flow, gated by `check_action`), StateViews (the `watch_*` reactions and the
header's `compute_status`), MessageHandlers (what each worker's message does to the state) and Opening.

Given an opener instead of a session (`prunetui`), the first frame (header, empty panes, footer) is drawn
before torch is imported, the opener runs in a thread (tui.loading), and the panes that need the session
(tui.panes, tui.plot_tabs) are mounted when it arrives. Until then only `q` works.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from prunetui.tui import keys
from prunetui.tui.key_actions import KeyActions
from prunetui.tui.loading import LoadingNote, Opening
from prunetui.tui.log_handler import route_logging
from prunetui.tui.message_handlers import MessageHandlers
from prunetui.tui.plot_tabs import PLOT_TABS
from prunetui.tui.scan_curves import DEFAULT_GRID, ScanCurves, Tolerance
from prunetui.tui.state_views import StateViews
from prunetui.tui.widgets.job_log import JobLog
from prunetui.tui.widgets.size_warning import SizeWarning, too_small
from prunetui.tui.widgets.status_line import Status, StatusLine

if TYPE_CHECKING:  # the first frame is drawn before torch is imported: these are imported with the session
    from prunetui.core.events import EpochEnd
    from prunetui.core.profile import Profile
    from prunetui.core.runs import RunRecord
    from prunetui.core.session import Session
    from prunetui.core.suggest import Suggestion
    from prunetui.tui.stats import ModelStats
    from prunetui.workflow.opening import Opened

WIDE = 130  # columns: below this the panes stack vertically
PLOTS_WIDTH = 80  # columns: side by side, the plots keep at least this (as wide as stacked at 80 columns)


def state(default, **options) -> reactive:
    """A workbench reactive: watchers run only on a change after mount, and the screen never repaints."""
    return reactive(default, repaint=False, init=False, **options)


class WorkbenchScreen(Opening, KeyActions, StateViews, MessageHandlers, Screen):
    BINDINGS = keys.BINDINGS

    # --- the workbench's state -------------------------------------------------------------------
    busy: reactive[bool] = state(False, bindings=True)
    """A job runs. Set by JobRunner.start, cleared only by the JobEnded its thread posts; gates actions."""
    targets: reactive[dict[str, float]] = state(dict)
    """A copy of `session.targets` (the one source), written only by `sync_targets`."""
    locked_layers: reactive[frozenset[str]] = state(frozenset)
    """Layers whose targets suggestions keep."""
    pending_suggestion: reactive[Suggestion | None] = state(None, bindings=True)
    """Suggested targets shown in the table, not applied yet: y accepts, n discards."""
    stats: reactive[ModelStats | None] = state(None)
    """Layer statistics and histograms of the model as it is, computed by each job that changes it."""
    projected_mib: reactive[float | None] = state(None)
    """The size the targets would give, once the preview worker has it."""
    curves: reactive[ScanCurves] = state(ScanCurves, always_update=True)
    """The sensitivity scan, point by point (mutated in place: `mutate_reactive`)."""
    runs: reactive[list[RunRecord]] = state(list)
    """Run records of this model in the working directory, oldest first."""
    epochs: reactive[list[EpochEnd]] = state(list)
    """Epochs of the current finetune run."""
    accuracy_before_finetune: reactive[float | None] = state(None)
    tolerance: reactive[Tolerance] = state(Tolerance)
    """The tolerated accuracy drop of a scan: the Safe column, the numbers' marks and the red line."""
    scan_grid: reactive[tuple[float, ...]] = state(DEFAULT_GRID)
    """The sparsities `s` scans each layer at (S sets it)."""
    sensitivity_numbers: reactive[bool] = state(False)
    """The Sensitivity tab shows the numbers (layers × sparsity) instead of the curves (T toggles)."""
    selection: reactive[frozenset[str]] = state(frozenset, bindings=True)
    """Layers whose targets digits, +/-, enter and c edit together (space, v, V, / select; escape clears)."""
    nonzero_only: reactive[bool] = state(False)
    """The histogram leaves the zeros out."""
    layer_bits: reactive[dict[str, int]] = state(dict)
    """A copy of `session.layer_bits` (k-means bits set per layer), written only by BitsFlow.sync."""
    method: reactive[str] = state("magnitude")
    """The pruning method's name (a copy of `session.method.name`, written by ModelFlows.next_method)."""
    recovery_marks: reactive[str] = state("")
    """The recovery options on (`+BN` while B is on; `+AGP`, `+KD` when the last finetune used them)."""
    status: reactive[Status | None] = reactive(None, repaint=False)
    """The header's fields (computed from the state and the session)."""

    def __init__(
        self,
        session: Session | None = None,
        opener: Callable[[], Opened] | None = None,
        profile: Profile | None = None,
        notes: list[str] | None = None,
    ) -> None:
        """A `session` (the tests), or an `opener` run in a thread after the first frame (`prunetui`)."""
        super().__init__(id="workbench")
        if (session is None) == (opener is None):
            raise ValueError("the workbench needs either a session or an opener")
        self.session = session
        self.opener = opener
        self.start_profile = profile
        self.notes = notes or []  # what opening the model and data said (random weights, skipped files)
        self.epochs_version: int | None = None
        """The model state (ModelStats.version) the last finetune's `epochs` ended in."""
        if session is not None:  # else once the opener returns
            from prunetui.tui import panes

            panes.attach_flows(self)  # jobs, model_flows, suggest, ...: the flows the keys drive
        self._restore_logging: Callable[[], None] = lambda: None

    # --- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield SizeWarning(id="size-warning")
        yield StatusLine(id="status").data_bind(WorkbenchScreen.status)
        panes = None
        if self.session is not None:
            from prunetui.tui import panes
        with Vertical(id="panes"):
            with Vertical(id="table-pane"):
                yield panes.layer_table(WorkbenchScreen) if panes else LoadingNote(self.app.model_spec)
            with TabbedContent(id="plots"):
                for tab in PLOT_TABS:
                    with TabPane(tab.title, id=tab.id):
                        yield from tab.widgets() if panes else [Static(classes="-waiting")]
            yield JobLog(id="job-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._restore_logging = route_logging(self.post_message)
        self.query_one("#table-pane").border_title = "Layers"
        self.query_one("#plots").border_title = "Plots"
        self.query_one(JobLog).border_title = "Log"
        if self.session is not None:
            self.start_workbench()
        else:
            self.start_opening()

    def start_workbench(self) -> None:
        """Once the session exists: the state from the session, the notes, the first job."""
        from prunetui.tui import jobs

        self.query_one("#layers").focus()
        if self.start_profile is not None:
            self.profiles.apply_at_start(self.start_profile)
        self.method = self.session.method.name
        for note in self.notes:
            self.write_log(note, "yellow")
        self.sync_targets()
        self.watch_curves()
        self.watch_epochs()
        self.watch_runs()
        self.jobs.start("Dense evaluation", partial(jobs.open_session, self.session))

    def on_unmount(self) -> None:
        self._restore_logging()

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        self.fit_table(width)
        self.query_one(SizeWarning).show_size(width, height)
        self.set_class(too_small(width, height), "-too-small")

    def fit_table(self, width: int) -> None:
        # stacked: the whole width (less the pane's bar); side by side: what leaves the plots PLOTS_WIDTH
        for table in self.query("#layers"):
            table.room = width - 1 if width < WIDE else width - PLOTS_WIDTH - 2

    # --- small helpers ---------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        return self.app.workdir

    @property
    def selected_layer(self) -> str | None:
        """The layer under the table's cursor: the cursor is the selection's one place."""
        return self.query_one("#layers").selected

    @property
    def job_title(self) -> str:
        return self.jobs.title

    def write_log(self, text: str, style: str = "") -> None:
        self.query_one(JobLog).write(text, style)

    def show_error(self, text: str) -> None:
        self.write_log(text, "bold red")
        self.notify(text, severity="error", timeout=8)

    def show_warning(self, text: str) -> None:
        self.write_log(text, "yellow")
        self.notify(text, severity="warning")

    def show_plot(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    def shown(self, path: Path) -> str:
        """`path` relative to the working directory when it is inside it."""
        from prunetui.tui import paths

        return paths.shown(path, self.workdir)

    # --- targets ---------------------------------------------------------------------------------
    def sync_targets(self) -> None:
        """The only writer of `targets`: called after anything changed `session.targets`."""
        self.targets = dict(self.session.targets)

    def set_targets(self, targets: dict[str, float]) -> None:
        """Targets of some layers, each clamped and rounded by the session (in channel mode, a layer
        that cannot be pruned keeps 0 and the reason is shown)."""
        table, fixed = self.query_one("#layers"), []
        for layer_name, value in targets.items():
            reason = table.reason(layer_name) if value > 0 else None
            if reason is not None:
                fixed.append(f"{layer_name} cannot be channel-pruned: {reason}")
                continue
            self.session.set_target(layer_name, value)
        if fixed:
            more = len(fixed) - 1
            self.show_warning(fixed[0] + (f" (and {more} more layer{'s' * (more > 1)})" if more else ""))
        self.sync_targets()

    def set_target(self, layer_name: str, value: float) -> None:
        self.set_targets({layer_name: value})

    # --- the tables' events: the views follow the cursor, enter is a key ------------------------
    @on(DataTable.RowHighlighted, "#layers")
    def _layer_row_highlighted(self) -> None:
        self.draw_weights()
        self.watch_curves()
        self.preview.request()

    @on(DataTable.RowSelected, "#layers")
    def _layer_row_selected(self) -> None:  # a click on a row
        self.action_layer_enter()

    def action_layer_enter(self) -> None:
        """Enter on the layer table: accept a pending suggestion, else type the exact target."""
        pending = self.pending_suggestion is not None
        self.run_gated("accept_suggestion" if pending else "exact_target")

    @on(DataTable.RowSelected, "#runs")
    def _run_row_selected(self) -> None:
        self.run_gated("load_run")
