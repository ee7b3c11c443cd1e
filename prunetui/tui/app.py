"""The TUI: a layer table, plots, a log, and keys that drive a core Session.

Jobs (dense evaluation, scan, prune, finetune, resume, reset, export) run one at a time in a thread
worker; suggestions and size previews are computed in workers of their own.
The thread only posts messages; `busy` is owned by the UI and cleared only by JobEnded.
"""

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from prunetui.core.events import Cancelled, EpochEnd, ScanPoint
from prunetui.core.profile import Profile, load_profile, save_profile
from prunetui.core.pruning import compound, magnitude_threshold
from prunetui.core.runs import RunRecord
from prunetui.core.session import Session
from prunetui.core.suggest import ScanTable, Suggestion
from prunetui.errors import UserError
from prunetui.tui import jobs, keys
from prunetui.tui.log_handler import route_logging
from prunetui.tui.messages import (
    FinetuneStarted,
    JobEnded,
    JobFailed,
    JobLine,
    JobProgress,
    JobReport,
    ModelChanged,
    PreviewReady,
    RunsLoaded,
    ScanLoaded,
    ScanStarted,
    SuggestionReady,
)
from prunetui.tui.paths import (
    PROFILES,
    default_export_path,
    export_files,
    profile_path,
    shown,
    user_path,
)
from prunetui.tui.runs_view import (
    is_resumable,
    pareto_best,
    profile_name_of,
    run_targets,
    targets_diff,
)
from prunetui.tui.scan_curves import ScanCurves
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.confirm_dialog import ConfirmDialog
from prunetui.tui.screens.finetune_dialog import FinetuneDialog, FinetuneRequest
from prunetui.tui.screens.help_screen import HelpScreen
from prunetui.tui.screens.open_profile_dialog import OpenProfileDialog
from prunetui.tui.screens.targets_diff_screen import TargetsDiffScreen
from prunetui.tui.stats import ModelStats, model_stats
from prunetui.tui.suggestion import GOAL_FORMS, Goal, parse_goal, propose, scan_table
from prunetui.tui.text import accuracy_text, parse_fraction, parse_profile_name
from prunetui.tui.widgets.finetune_plot import FinetunePlot
from prunetui.tui.widgets.job_log import JobLog
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.params_plot import ParamsPlot
from prunetui.tui.widgets.runs_plot import RunsPlot
from prunetui.tui.widgets.runs_table import RunsTable
from prunetui.tui.widgets.sensitivity_plot import SensitivityPlot
from prunetui.tui.widgets.size_warning import SizeWarning, too_small
from prunetui.tui.widgets.status_line import Status, StatusLine
from prunetui.tui.widgets.weights_plot import WeightsPlot

BUSY = "a job is running (x cancels it)"
SUGGESTION_PENDING = "accept (y) or discard (n) the suggested targets first"
WIDE = 110  # columns: below this the panes stack vertically
TALL = 30  # rows: below this the Runs tab shows its table only, not the plot
SHAPE_COLUMN_WIDTH = 150  # columns: below this the table drops its Shape column
PLOT_TABS = ["weights-tab", "params-tab", "sensitivity-tab", "finetune-tab", "runs-tab"]


class PruneApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "prunetui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL, "-tall")]
    BINDINGS = keys.BINDINGS

    def __init__(
        self,
        session: Session,
        profile: Profile | None = None,
        workdir: Path | None = None,
        device_label: str = "cpu",
    ) -> None:
        super().__init__()
        self.session = session
        self.start_profile = profile
        self.workdir = Path(workdir) if workdir is not None else Path.cwd()
        self.device_label = device_label
        self.busy = False
        self.job_title = ""
        self.cancel_event: threading.Event | None = None
        self.quit_when_idle = False
        self.stats: ModelStats | None = None
        self.curves = ScanCurves()
        self.epochs: list[EpochEnd] = []
        self.accuracy_before_finetune: float | None = None
        self.nonzero_only = False
        self.projected_mib: float | None = None  # of the targets, once the preview worker has it
        self._thresholds: dict[tuple[str, float], float] = {}  # (layer, target) -> |w| threshold
        self._restore_logging: Callable[[], None] = lambda: None
        self.runs: list[RunRecord] = []  # of this model in the working directory, oldest first
        self.unreadable_runs: set[Path] = set()
        self.locked_layers: set[str] = set()
        self.pending_suggestion: Suggestion | None = None  # shown in the table, not applied yet
        self.accepted_suggestion: Suggestion | None = None  # its prediction is compared when pruned

    # --- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield SizeWarning(id="size-warning")
        yield StatusLine(id="status")
        with Vertical(id="panes"):
            with Vertical(id="table-pane"):
                yield LayerTable(id="layers")
            with TabbedContent(id="plots"):
                with TabPane("Weights", id="weights-tab"):
                    yield WeightsPlot()
                with TabPane("Params", id="params-tab"):
                    yield ParamsPlot()
                with TabPane("Sensitivity", id="sensitivity-tab"):
                    yield SensitivityPlot()
                with TabPane("Finetune", id="finetune-tab"):
                    yield FinetunePlot()
                with TabPane("Runs", id="runs-tab"):
                    yield RunsTable(id="runs")
                    yield RunsPlot()
            yield JobLog(id="job-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._restore_logging = route_logging(self.post_message)
        self.query_one("#table-pane").border_title = "Layers"
        self.query_one("#plots").border_title = "Plots"
        self.query_one(JobLog).border_title = "Log"
        self.query_one(LayerTable).focus()
        if self.start_profile is not None:
            self._apply_start_profile(self.start_profile)
        self.query_one(SensitivityPlot).draw(self.curves, None)
        self.query_one(FinetunePlot).draw(self.epochs, None)
        self.query_one(RunsPlot).draw(self.runs, [])
        self.refresh_status()
        self.request_preview()
        self.start_job("Dense evaluation", partial(jobs.open_session, self.session))

    def on_unmount(self) -> None:
        self._restore_logging()

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        self.query_one(LayerTable).compact = width < SHAPE_COLUMN_WIDTH
        warning = self.query_one(SizeWarning)
        warning.show_size(width, height)
        warning.screen.set_class(too_small(width, height), "-too-small")

    def _apply_start_profile(self, profile: Profile) -> None:
        try:
            self._check_model(profile)
            self.session.apply_profile(profile)
        except UserError as error:
            self.show_error(str(error))
            return
        self.write_log(f"Profile {profile.name} applied to the targets")

    # --- small helpers ---------------------------------------------------------------------------
    @property
    def selected_layer(self) -> str | None:
        return self.query_one(LayerTable).selected

    def write_log(self, text: str, style: str = "") -> None:
        self.query_one(JobLog).write(text, style)

    def show_error(self, text: str) -> None:
        self.write_log(text, "bold red")
        self.notify(text, severity="error", timeout=8)

    def show_warning(self, text: str) -> None:
        self.write_log(text, "yellow")
        self.notify(text, severity="warning")

    def refresh_status(self) -> None:
        session, suggestion = self.session, self.pending_suggestion
        self.query_one(StatusLine).status = Status(
            model_label=session.label,
            device_label=self.device_label,
            dense_accuracy=session.dense_accuracy,
            accuracy=session.accuracy,
            size_mib=self.stats.size_mib if self.stats else None,
            dense_mib=session.dense_size,
            projected_mib=self.projected_mib,
            suggested_mib=suggestion.size_mib if suggestion else None,
            predicted_accuracy=suggestion.predicted_accuracy if suggestion else None,
        )

    def request_preview(self) -> None:
        """Projected size and threshold cost tens of ms on a large model: computed off the UI thread."""
        self._preview(dict(self.session.targets), self.selected_layer)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _preview(self, targets: dict[str, float], layer_name: str | None) -> None:
        projected_mib = self.session.projected_size(targets)  # reads only the dense weights
        if layer_name is not None:
            key = (layer_name, targets[layer_name])
            if key not in self._thresholds:
                self._thresholds[key] = magnitude_threshold(self.session.dense_state[layer_name], key[1])
        if not get_current_worker().is_cancelled:
            self.post_message(PreviewReady(targets, projected_mib))

    def on_preview_ready(self, message: PreviewReady) -> None:
        if message.targets != self.session.targets:
            return  # the targets changed meanwhile: a newer preview is on its way
        self.projected_mib = message.projected_mib
        self.refresh_status()
        self.draw_weights()

    def draw_weights(self) -> None:
        layer_name = self.selected_layer
        if self.stats is None or layer_name is None:
            return
        target = self.session.targets[layer_name]
        self.query_one(WeightsPlot).draw(
            layer_name,
            self.stats.histograms[layer_name],
            target,
            self._thresholds.get((layer_name, target), 0.0),  # the preview fills it in
            self.nonzero_only,
        )

    def draw_sensitivity(self) -> None:
        self.query_one(SensitivityPlot).draw(self.curves, self.selected_layer)

    def show_plot(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    # --- targets ---------------------------------------------------------------------------------
    def set_target(self, layer_name: str, value: float) -> None:
        target = self.session.set_target(layer_name, value)
        self.query_one(LayerTable).show_target(layer_name, target)
        if layer_name == self.selected_layer:
            self.draw_weights()
        self.request_preview()

    def action_select(self, step: int) -> None:
        table = self.query_one(LayerTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.cursor_row + step, table.row_count - 1)))

    def action_nudge(self, delta: float) -> None:
        if layer_name := self.selected_layer:
            self.set_target(layer_name, self.session.targets[layer_name] + delta)

    def action_set_target(self, value: float) -> None:
        if layer_name := self.selected_layer:
            self.set_target(layer_name, value)

    def action_exact_target(self) -> None:
        layer_name = self.selected_layer
        if layer_name is None:
            return
        current = self.session.targets[layer_name]
        dialog = AskDialog(
            "Target sparsity",
            f"{layer_name}: a number in [0, 1] or a percentage",
            parse_fraction,
            f"{current:g}",
        )
        self.push_screen(dialog, partial(self._exact_target_chosen, layer_name))

    def _exact_target_chosen(self, layer_name: str, value: float | None) -> None:
        if value is not None:
            self.set_target(layer_name, value)

    @on(DataTable.RowSelected, "#layers")
    def _layer_row_selected(self) -> None:
        if self.pending_suggestion is not None:
            self.action_accept_suggestion()
        else:
            self.action_exact_target()

    def action_compound(self) -> None:
        layer_name = self.selected_layer
        if layer_name is not None:
            self._ask_beta(f"{layer_name}: target = current + (1 - current) × beta", [layer_name])

    def action_compound_all(self) -> None:
        pruned = [layer for layer, target in self.session.targets.items() if target > 0]
        if not pruned:
            self.notify("No layer has a target > 0 yet", severity="warning")
            return
        self._ask_beta(
            f"{len(pruned)} layers with a target > 0: target = current + (1 - current) × beta", pruned
        )

    def _ask_beta(self, prompt: str, layer_names: list[str]) -> None:
        dialog = AskDialog("Compound rule", prompt, parse_fraction)
        self.push_screen(dialog, partial(self._compound_chosen, layer_names))

    def _compound_chosen(self, layer_names: list[str], beta: float | None) -> None:
        if beta is None:
            return
        for layer_name in layer_names:
            self.set_target(layer_name, compound(self.session.targets[layer_name], beta))
        self.write_log(f"Compound rule, beta {beta:g}, applied to {len(layer_names)} layer(s)")

    # --- jobs ------------------------------------------------------------------------------------
    def start_job(self, title: str, job: jobs.Job, changes_model: bool = True) -> bool:
        if self.busy:
            self.notify(BUSY, severity="warning")
            return False
        self.busy = True
        self.job_title = title
        self.cancel_event = threading.Event()
        self.query_one(JobLog).begin(title)
        self._run_job(title, job, jobs.JobContext(self.post_message, self.cancel_event), changes_model)
        return True

    @work(thread=True, exit_on_error=False, group="job")
    def _run_job(self, title: str, job: jobs.Job, ctx: jobs.JobContext, changes_model: bool) -> None:
        try:
            try:
                with self.session.transaction():
                    job(ctx)
            except Cancelled:
                ctx.say(f"{title} cancelled: the model is as it was", "yellow")
            except Exception as error:  # shown, never fatal: the transaction put the model back
                ctx.post(JobFailed(f"{title} failed: {jobs.error_text(error)}"))
            if changes_model:
                ctx.post(ModelChanged(model_stats(self.session)))
                jobs.load_runs(self.session, ctx)  # a prune or finetune records a run
        finally:
            ctx.post(JobEnded())

    def _needs_data(self, what: str) -> bool:
        if self.session.data is None:
            self.show_error(f"{what} needs data: start prunetui with --data")
            return True
        return False

    def action_scan(self) -> None:
        if not self._needs_data("Scan"):
            self.start_job("Scan", partial(jobs.scan, self.session), changes_model=False)

    def _predicted_accuracy(self) -> float | None:
        """What the accepted suggestion predicted, while the targets are still the suggested ones."""
        accepted = self.accepted_suggestion
        if accepted is not None and accepted.targets == self.session.targets:
            return accepted.predicted_accuracy
        return None

    def action_prune(self) -> None:
        targets = dict(self.session.targets)
        self.start_job(
            "Prune", partial(jobs.prune, self.session, targets, predicted=self._predicted_accuracy())
        )

    def action_finetune(self) -> None:
        if self._needs_data("Finetune"):
            return
        if self.busy:
            self.notify(BUSY, severity="warning")
            return
        note = ""
        if self._prune_first() is not None:
            note = "Not pruned yet: the targets are applied first (as p does)."
        self.push_screen(FinetuneDialog(note, gpus=self._gpu_count()), self._finetune_chosen)

    def _gpu_count(self) -> int:
        """GPUs a finetune can spread over: those visible when the model is on CUDA."""
        return torch.cuda.device_count() if self.session.device.type == "cuda" else 1

    def _prune_first(self) -> dict[str, float] | None:
        """The targets to prune to before finetuning: when nothing is pruned yet and some target is set."""
        targets = dict(self.session.targets)
        return targets if not self.session.masks and any(targets.values()) else None

    def _finetune_chosen(self, request: FinetuneRequest | None) -> None:
        if request is None:
            return
        job = partial(
            jobs.finetune,
            self.session,
            request.settings,
            self._prune_first(),
            nproc=request.nproc,
            predicted=self._predicted_accuracy(),
        )
        if self.start_job("Finetune", job):
            self._show_new_finetune()

    def _show_new_finetune(self) -> None:
        self.epochs = []
        self.accuracy_before_finetune = None
        self.query_one(FinetunePlot).draw(self.epochs, None)
        self.show_plot("finetune-tab")

    def action_reset(self) -> None:
        if self.busy:
            self.notify(BUSY, severity="warning")
            return
        reset = partial(self.start_job, "Reset", partial(jobs.reset, self.session))
        if not self.session.masks:
            reset()
            return
        question = "Back to the dense weights? The pruned weights are lost unless exported (w)."
        self.push_screen(ConfirmDialog(question), lambda yes: yes and reset())

    def action_cancel_job(self) -> None:
        if self.pending_suggestion is not None:
            self.action_discard_suggestion()
            return
        if not self.busy or self.cancel_event is None:
            return
        if not self.cancel_event.is_set():
            self.cancel_event.set()
            self.write_log(f"Cancelling {self.job_title}…", "yellow")

    # --- job messages ----------------------------------------------------------------------------
    def on_job_progress(self, message: JobProgress) -> None:
        self.query_one(JobLog).show_progress(message.progress)

    def on_job_line(self, message: JobLine) -> None:
        self.write_log(message.text, message.style)

    def on_job_failed(self, message: JobFailed) -> None:
        self.show_error(message.text)

    def on_scan_started(self, message: ScanStarted) -> None:
        self.curves = ScanCurves(base_accuracy=message.base_accuracy)
        self.query_one(LayerTable).clear_safe()
        self.draw_sensitivity()
        self.show_plot("sensitivity-tab")

    def on_finetune_started(self, message: FinetuneStarted) -> None:
        self.accuracy_before_finetune = message.accuracy_before
        self.query_one(FinetunePlot).draw(self.epochs, message.accuracy_before)

    def on_job_report(self, message: JobReport) -> None:
        event = message.event
        if isinstance(event, EpochEnd):
            self.write_log(event.line())
            self.epochs.append(event)
            self.query_one(FinetunePlot).draw(self.epochs, self.accuracy_before_finetune)
        elif isinstance(event, ScanPoint):
            self.curves.add(event.layer, event.sparsity, event.accuracy)
            safe = self.curves.safe_sparsity(event.layer)
            if safe is not None:
                self.query_one(LayerTable).show_safe(event.layer, safe)
            self.draw_sensitivity()

    def on_model_changed(self, message: ModelChanged) -> None:
        self.stats = message.stats
        self.query_one(LayerTable).show_layers(self.stats.layers, self.session.targets)
        self.query_one(ParamsPlot).draw(self.stats.layers)
        self.draw_weights()
        self.refresh_status()
        self.request_preview()  # a failed job puts the targets back too

    def on_job_ended(self, message: JobEnded) -> None:
        self.busy = False
        self.cancel_event = None
        self.query_one(JobLog).end()
        self.refresh_status()
        if self.quit_when_idle:
            self.exit(0)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A job catches its own errors; this is the net under the net (computing the stats, the preview).
        if event.state == WorkerState.ERROR:
            what = {"job": self.job_title, "suggest": "Suggest"}.get(event.worker.group, "Size preview")
            self.show_error(f"{what} failed: {jobs.error_text(event.worker.error)}")

    # --- selection, plots ------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#layers")
    def _layer_row_highlighted(self) -> None:
        self.draw_weights()
        self.draw_sensitivity()
        self.request_preview()

    def action_next_plot(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = PLOT_TABS[(PLOT_TABS.index(tabs.active) + 1) % len(PLOT_TABS)]

    def action_toggle_zeros(self) -> None:
        self.nonzero_only = not self.nonzero_only
        self.draw_weights()
        self.show_plot("weights-tab")

    # --- profiles and export ---------------------------------------------------------------------
    @property
    def profiles_dir(self) -> Path:
        return self.workdir / PROFILES

    def action_save_profile(self) -> None:
        dialog = AskDialog(
            "Save profile",
            f"Name (saved as {PROFILES}/NAME.toml in {self.workdir})",
            parse_profile_name,
            self._profile_name_suggestion(),
        )
        self.push_screen(dialog, self._profile_name_chosen)

    def _profile_name_suggestion(self) -> str:
        """The current profile's name, or the first free runN."""
        if self.session.profile_name != "custom":
            return self.session.profile_name
        taken = {p.stem for p in self.profiles_dir.glob("*.toml")}
        return next(f"run{n}" for n in range(1, len(taken) + 2) if f"run{n}" not in taken)

    def _profile_name_chosen(self, profile_name: str | None) -> None:
        if profile_name is None:
            return
        path = self.profiles_dir / f"{profile_name}.toml"
        if not path.exists():
            self._save_profile(profile_name, path, overwrite=False)
            return
        question = f"{shown(path, self.workdir)} exists. Overwrite it?"
        self.push_screen(
            ConfirmDialog(question),
            lambda yes: yes and self._save_profile(profile_name, path, overwrite=True),
        )

    def _save_profile(self, profile_name: str, path: Path, overwrite: bool) -> None:
        try:
            save_profile(self.session.profile(profile_name), path, overwrite=overwrite)
        except UserError as error:
            self.show_error(str(error))
            return
        self.session.profile_name = profile_name
        self.write_log(f"Saved profile {shown(path, self.workdir)}")

    def action_open_profile(self) -> None:
        files = sorted(shown(p, self.workdir) for p in self.profiles_dir.glob("*.toml"))
        self.push_screen(OpenProfileDialog(files, self._open_profile), self._profile_opened)

    def _check_model(self, profile: Profile) -> None:
        if profile.model is not None and profile.model != self.session.label:
            raise UserError(
                f"profile '{profile.name}' is for model {profile.model}, not {self.session.label}"
            )

    def _open_profile(self, text: str) -> Profile:
        """Load, check and apply a profile; a UserError leaves the targets as they were."""
        profile = load_profile(profile_path(text, self.workdir))
        self._check_model(profile)
        self.session.apply_profile(profile)
        return profile

    def _profile_opened(self, profile: Profile | None) -> None:
        if profile is None:
            return
        self.query_one(LayerTable).show_targets(self.session.targets)
        self.draw_weights()
        self.request_preview()
        self.write_log(f"Opened profile {profile.name}: {len(profile.sparsity)} layer targets")

    def action_export(self) -> None:
        if self.busy:
            self.notify(BUSY, severity="warning")
            return
        profile_name = self.session.profile_name
        default = default_export_path(self.workdir, self.session.label, profile_name)
        dialog = AskDialog(
            "Export checkpoint",
            "Path (relative to the working directory)",
            self._parse_export_path,
            shown(default, self.workdir),
        )
        self.push_screen(dialog, partial(self._export_path_chosen, profile_name))

    def _parse_export_path(self, text: str) -> Path:
        try:
            return user_path(text, self.workdir)
        except UserError as error:
            raise ValueError(str(error)) from None

    def _export_path_chosen(self, profile_name: str, path: Path | None) -> None:
        if path is None:
            return
        existing = [shown(p, self.workdir) for p in export_files(path) if p.exists()]

        def export(overwrite: bool) -> None:
            job = partial(jobs.export, self.session, path, profile_name, overwrite)
            self.start_job("Export", job, changes_model=False)

        if not existing:
            export(overwrite=False)
            return
        question = f"{' and '.join(existing)} exist{'s' if len(existing) == 1 else ''}. Overwrite?"
        self.push_screen(ConfirmDialog(question), lambda yes: yes and export(overwrite=True))

    # --- suggestions and locks -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        pending = self.pending_suggestion is not None
        if action in keys.SUGGESTION_ACTIONS:
            return pending
        return not (pending and action in keys.BLOCKED_BY_SUGGESTION)

    def _suggestion_shown(self, suggestion: Suggestion | None) -> None:
        self.pending_suggestion = suggestion
        self.query_one(LayerTable).show_proposal(suggestion.targets if suggestion else None)
        self.refresh_status()
        self.refresh_bindings()

    def action_toggle_lock(self) -> None:
        layer_name = self.selected_layer
        if layer_name is None:
            return
        self.locked_layers ^= {layer_name}
        self.query_one(LayerTable).show_locks(self.locked_layers)
        if layer_name in self.locked_layers:
            self.write_log(
                f"Locked {layer_name} at {self.session.targets[layer_name]:.2f}: suggestions keep it"
            )
        else:
            self.write_log(f"Unlocked {layer_name}")

    def _unscanned_layers(self) -> list[str]:
        scanned = self.curves.complete_rows(self.curves.sparsities())
        return [n for n in self.session.layer_names if n not in scanned and n not in self.locked_layers]

    def action_suggest(self) -> None:
        missing = self._unscanned_layers()
        if self.curves.base_accuracy is None or missing:
            which = f" ({len(missing)} not scanned)" if self.curves.base_accuracy is not None else ""
            self.show_warning(f"Suggest needs a scan of every unlocked layer{which}: run a scan first (s)")
            return
        locks = "No layer is locked (l locks the selected one: suggestions keep its target)"
        if self.locked_layers:
            locks = f"{len(self.locked_layers)} locked layer(s) keep their targets (l unlocks)"
        dialog = AskDialog(
            "Suggest targets",
            f"Goal (dense is {self.session.dense_size:.2f} MiB), one of:\n{GOAL_FORMS}\n{locks}",
            partial(parse_goal, dense_mib=self.session.dense_size),
            "25%",
        )
        self.push_screen(dialog, self._goal_chosen)

    def _goal_chosen(self, goal: Goal | None) -> None:
        if goal is None:
            return
        session = self.session
        locked = {name: session.targets[name] for name in self.locked_layers}
        params = {name: session.dense_state[name].numel() for name in session.layer_names}
        self.write_log(f"Suggesting targets for {goal.text}…")
        self._suggest(goal, scan_table(self.curves, params), locked)

    @work(thread=True, exclusive=True, group="suggest", exit_on_error=False)
    def _suggest(self, goal: Goal, table: ScanTable, locked: dict[str, float]) -> None:
        """Off the UI thread: the search calls projected_size many times."""
        try:
            suggestion = propose(goal, table, self.session.projected_size, locked)
        except UserError as error:
            self.post_message(JobFailed(f"Suggest: {error}"))
            return
        if not get_current_worker().is_cancelled:  # else a newer goal was asked for meanwhile
            self.post_message(SuggestionReady(goal, suggestion))

    def on_suggestion_ready(self, message: SuggestionReady) -> None:
        suggestion, session = message.suggestion, self.session
        changed = sum(1 for n, t in suggestion.targets.items() if abs(t - session.targets[n]) > 5e-5)
        self.write_log(
            f"Suggested for {message.goal.text}: {suggestion.size_mib:.2f} MiB = "
            f"{session.percent(suggestion.size_mib):.2f}% of dense, predicted accuracy "
            f"{accuracy_text(suggestion.predicted_accuracy)} before finetuning (sum of scan drops); "
            f"{changed} target(s) change",
            "magenta",
        )
        self.write_log("y or enter accepts, n or escape discards", "magenta")
        self._suggestion_shown(suggestion)

    def action_accept_suggestion(self) -> None:
        suggestion = self.pending_suggestion
        if suggestion is None:
            return
        self._suggestion_shown(None)
        for layer_name, target in suggestion.targets.items():
            self.set_target(layer_name, target)
        self.accepted_suggestion = replace(suggestion, targets=dict(self.session.targets))  # as rounded
        self.write_log("Suggested targets accepted (p prunes to them)")

    def action_discard_suggestion(self) -> None:
        self._suggestion_shown(None)
        self.write_log("Suggested targets discarded")

    # --- runs ------------------------------------------------------------------------------------
    def on_runs_loaded(self, message: RunsLoaded) -> None:
        for path in set(message.unreadable) - self.unreadable_runs:
            self.write_log(f"warning: skipped unreadable run record {shown(path, self.workdir)}", "yellow")
        self.unreadable_runs = set(message.unreadable)
        self.runs = message.records
        best = pareto_best(self.runs)
        self.query_one(RunsTable).show_runs(self.runs, best)
        self.query_one(RunsPlot).draw(self.runs, best)

    def on_scan_loaded(self, message: ScanLoaded) -> None:
        self.curves = ScanCurves.from_result(message.result)
        table = self.query_one(LayerTable)
        for layer_name in self.curves.points:
            table.show_safe(layer_name, self.curves.safe_sparsity(layer_name))
        self.draw_sensitivity()
        folder = shown(self.session.scan_cache_folder, self.workdir)
        self.write_log(f"Last scan of this model ({len(self.curves.points)} layers) read from {folder}")

    def _selected_run(self) -> RunRecord | None:
        """The run under the runs table's cursor; says so when there is none yet."""
        self.show_plot("runs-tab")
        run = self.query_one(RunsTable).selected_run
        if run is None:
            self.notify("No runs yet: p prunes, f finetunes", severity="warning")
        return run

    def _run_label(self, run: RunRecord) -> str:
        return f"run {self.query_one(RunsTable).number_of(run)} ({run.name})"

    def action_show_runs(self) -> None:
        self.show_plot("runs-tab")
        self.query_one(RunsTable).focus()

    @on(DataTable.RowSelected, "#runs")
    def _run_row_selected(self) -> None:
        self.action_load_run()

    def action_load_run(self) -> None:
        if not self.check_action("load_run", ()):
            self.notify(SUGGESTION_PENDING, severity="warning")
            return
        run = self._selected_run()
        if run is None:
            return
        self.session.targets = run_targets(run, self.session.layer_names)
        self.session.profile_name = profile_name_of(run)
        self.query_one(LayerTable).show_targets(self.session.targets)
        self.draw_weights()
        self.request_preview()
        self.write_log(f"Targets from {self._run_label(run)}")

    def action_mark_run(self) -> None:
        if self._selected_run() is None:
            return
        marked = self.query_one(RunsTable).toggle_mark()
        if marked is None:
            self.write_log("No run marked: d compares the selected run with the current targets")
        else:
            self.write_log(f"Marked {self._run_label(marked)}: d compares it with the selected run")

    def action_diff_runs(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        table, layer_names = self.query_one(RunsTable), self.session.layer_names
        marked = table.marked_run
        reference = run_targets(marked, layer_names) if marked else dict(self.session.targets)
        rows = targets_diff(layer_names, reference, run_targets(run, layer_names))
        title = f"{self._run_label(marked) if marked else 'Current targets'} → {self._run_label(run)}"
        labels = (f"run {table.number_of(marked)}" if marked else "targets", f"run {table.number_of(run)}")
        self.push_screen(TargetsDiffScreen(title, labels, rows))

    def action_resume_run(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        if not is_resumable(run):
            self.notify(
                f"{self._run_label(run)} has nothing to resume ({run.kind}, {run.status})", severity="warning"
            )
            return
        number = self.query_one(RunsTable).number_of(run)
        if self.start_job("Resume", partial(jobs.resume, self.session, run, number)):
            self._show_new_finetune()

    # --- help, palette, quit ---------------------------------------------------------------------
    def _key_names(self, binding: Binding) -> list[str]:
        return [self.get_key_display(binding.with_key(key)) for key in binding.key.split(",")]

    def help_rows(self) -> list[tuple[str, str]]:
        """(keys, description) for every binding of the main screen, digits folded into one row."""
        rows = [("↑ ↓", "Select layer (or run, in the runs table)"), ("⏎ on a run", keys.LOAD_RUN)]
        seen_groups = set()
        for binding in self.BINDINGS:
            if binding.group is not None:
                if binding.group not in seen_groups:
                    seen_groups.add(binding.group)
                    rows.append(("0-9", binding.group.description))
                continue
            rows.append((" ".join(self._key_names(binding)), binding.tooltip or binding.description))
        rows.append(("tab", "Next pane (arrows then work inside it)"))
        rows.append(("^p", "Command palette: every action by name"))
        return rows

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if binding.action == "quit":
                continue  # the default commands already have Quit
            yield SystemCommand(
                binding.tooltip or binding.description,
                f"key: {', '.join(self._key_names(binding))}",
                partial(self.run_action, binding.action),
                discover=binding.group is None,
            )
        yield SystemCommand(keys.LOAD_RUN, "key: ⏎ in the runs table", self.action_load_run)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_rows()))

    async def action_quit(self) -> None:
        if not self.busy:
            self.exit(0)
            return
        question = f"{self.job_title} is running. Cancel it and quit?"
        self.push_screen(ConfirmDialog(question), self._quit_confirmed)

    def _quit_confirmed(self, yes: bool | None) -> None:
        if not yes:
            return
        if not self.busy:
            self.exit(0)
            return
        self.quit_when_idle = True
        self.action_cancel_job()


def run_app(session: Session, profile: Profile | None = None, device_label: str = "cpu") -> int:
    """Run the TUI on `session` in the current working directory; returns the exit code."""
    app = PruneApp(session, profile=profile, device_label=device_label)
    app.run()
    return app.return_code or 0
