"""What each key does: the workbench's actions, each a line handing over to the flow the screen composes,
and their gating (`check_action`: hidden while a suggestion waits, disabled while a job runs).

`KeyActions` is mixed into WorkbenchScreen (Textual finds actions and `check_action` on the screen); it
keeps no state of its own: everything it reads is the screen's. It is imported by the first frame, before
torch: what needs the session (the flows, the help built from the runs table's keys) is imported where it
is used.
"""

from collections.abc import Iterable

from textual import events
from textual.actions import parse as parse_action
from textual.app import SystemCommand
from textual.widgets import DataTable, TabbedContent

from prunetui.tui import keys
from prunetui.tui.keys import BUSY, OPENING
from prunetui.tui.plot_tabs import next_tab

SUGGESTION_PENDING = "accept (y) or discard (n) the suggested targets first"
NO_SUGGESTION = "no suggested targets to answer: a suggests some"


class KeyActions:
    """Mixed into WorkbenchScreen; `self` is the screen."""

    def _cursor_table(self) -> DataTable:
        """The table whose cursor j/k move: the runs table in the Runs tab, else the layer table."""
        focused = self.focused
        if isinstance(focused, DataTable) and self.runs_focused():
            return focused
        return self.query_one("#layers", DataTable)

    def action_select(self, step: int) -> None:
        """j/k: the next or previous row of the table in focus (the runs table), else of the layer table."""
        table = self._cursor_table()
        if table.row_count:
            table.move_cursor(row=max(0, min(table.cursor_row + step, table.row_count - 1)))

    def action_select_edge(self, last: bool) -> None:
        """home/g, end/G: the first or the last row, of the same table as j/k."""
        table = self._cursor_table()
        if table.row_count:
            table.move_cursor(row=table.row_count - 1 if last else 0)

    def action_nudge(self, delta: float) -> None:
        self.selection_flow.nudge_all(delta)

    def action_set_target(self, value: float) -> None:
        self.selection_flow.set_all(value)

    def action_exact_target(self) -> None:
        if self.selection:
            self.selection_flow.ask_exact()
        else:
            self.model_flows.ask_exact_target()

    def action_compound(self) -> None:
        if self.selection:
            self.selection_flow.ask_compound()
        else:
            self.compound.ask_selected()

    # --- the selection and the Sensitivity tab ---------------------------------------------------
    def action_toggle_selected(self) -> None:
        self.selection_flow.toggle()

    def action_select_range(self) -> None:
        self.selection_flow.select_range()

    def action_select_all(self) -> None:
        self.selection_flow.select_all()

    def action_select_pattern(self) -> None:
        self.selection_flow.ask_pattern()

    def action_toggle_sensitivity_numbers(self) -> None:
        self.sensitivity_numbers = not self.sensitivity_numbers
        self.show_plot("sensitivity-tab")

    def action_scan_settings(self) -> None:
        self.scan_settings.ask()

    def runs_focused(self) -> bool:
        """The Runs tab's table has the focus: keys act on the runs, not on the layers."""
        focused = self.focused
        return focused is not None and any(node.id == "runs-tab" for node in focused.ancestors_with_self)

    def action_compound_all(self) -> None:
        self.compound.ask_pruned()

    # --- gating ----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hidden (False) while a suggestion waits for its answer; disabled (None) while a job runs, and
        until the session is open."""
        pending = self.pending_suggestion is not None
        if action in keys.SUGGESTION_ACTIONS and not pending:
            return False
        if action in keys.LAYER_ACTIONS and self.runs_focused():
            return False  # keys act on the pane in view
        if action in keys.RUNS_ACTIONS and self.query_one(TabbedContent).active != "runs-tab":
            return False
        if self.session is None:  # the footer as it will be, dimmed
            return True if action in keys.BEFORE_SESSION else None
        if pending and action in keys.BLOCKED_BY_SUGGESTION:
            return False
        if self.busy and action in keys.TARGET_EDITS and not self.jobs.changes_model:
            return True  # a scan reads the weights, not the targets: keep editing while it runs
        if self.busy and action in keys.BLOCKED_WHILE_BUSY:
            return None
        return True

    def refusal(self, action: str) -> str | None:
        """Why `action` cannot run now (None: it can)."""
        allowed = self.check_action(action, ())
        if allowed:
            return None
        if allowed is None:
            return OPENING if self.session is None else BUSY
        return NO_SUGGESTION if action in keys.SUGGESTION_ACTIONS else SUGGESTION_PENDING

    def run_gated(self, action: str) -> None:
        """Run the action `action_NAME` (no parameters) as its key would, or say why it cannot run."""
        reason = self.refusal(action)
        if reason is not None:
            self.notify(reason, severity="warning")
            return
        getattr(self, f"action_{action}")()

    def on_key(self, event: events.Key) -> None:
        """A key a running job (or the opening) disables says why (the footer shows it dimmed); App.on_key
        sees it first."""
        if not (self.busy or self.session is None) or not self.is_active:
            return  # a dialog's keys are its own
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        if active.node is self or active.binding.action.startswith("screen."):  # the runs table's own
            # short: the toast covers the progress row it points to
            self.notify(OPENING if self.session is None else BUSY, severity="warning", timeout=2)

    # --- actions of the composed flows -----------------------------------------------------------
    def action_scan(self) -> None:
        self.model_flows.scan()

    def action_prune(self) -> None:
        self.model_flows.prune()

    def action_prune_further(self) -> None:
        self.model_flows.prune(start="current")

    def action_finetune(self) -> None:
        self.model_flows.ask_finetune()

    def action_recalibrate(self) -> None:
        self.recovery.recalibrate_now()

    def action_toggle_recalibrate(self) -> None:
        self.recovery.toggle()

    def action_time_groups(self) -> None:
        self.speed.time_groups()

    def action_reset(self) -> None:
        self.model_flows.ask_reset()

    def action_cancel_job(self) -> None:
        if self.pending_suggestion is not None:
            self.suggest.discard()
        elif self.selection and not self.busy:
            self.selection_flow.clear()
        else:
            self.jobs.cancel()

    def action_suggest(self) -> None:
        self.suggest.ask_goal()

    def action_accept_suggestion(self) -> None:
        self.suggest.accept()

    def action_discard_suggestion(self) -> None:
        self.suggest.discard()

    def action_toggle_lock(self) -> None:
        self.suggest.toggle_lock()

    def action_save_profile(self) -> None:
        self.profiles.ask_save()

    def action_open_profile(self) -> None:
        self.profiles.ask_open()

    def action_export(self) -> None:
        self.profiles.ask_export()

    def action_show_runs(self) -> None:
        self.runs_tab.focus()

    def action_load_run(self) -> None:
        self.runs_tab.load_selected()

    def action_mark_run(self) -> None:
        self.runs_tab.mark_selected()

    def action_diff_runs(self) -> None:
        self.runs_tab.diff_selected()

    def action_resume_run(self) -> None:
        self.runs_tab.resume_selected()

    def action_next_plot(self) -> None:
        tabs = self.query_one(TabbedContent)
        leaving_runs = self.runs_focused()
        tabs.active = next_tab(tabs.active)
        if leaving_runs:  # the runs go out of view: the keys act on the layers again
            self.query_one("#layers").focus()

    def action_cycle_method(self) -> None:
        self.model_flows.next_method()

    def action_cycle_bits(self) -> None:
        self.bits.cycle()

    def action_quantize(self) -> None:
        self.bits.ask_quantize()

    def action_toggle_zeros(self) -> None:
        self.nonzero_only = not self.nonzero_only
        self.show_plot("weights-tab")

    # --- help, palette, quit ---------------------------------------------------------------------
    def help_rows(self) -> list[tuple[str, str]]:
        from prunetui.tui import key_help

        return key_help.help_rows(self)

    def system_commands(self) -> Iterable[SystemCommand]:
        """The palette's commands for the workbench's keys (the app adds them to Textual's own)."""
        if self.session is not None:
            from prunetui.tui import key_help

            yield from key_help.system_commands(self)

    async def run_from_palette(self, action: str) -> None:
        """As the action's key would: a refused action says why."""
        _, name, _ = parse_action(action)
        reason = self.refusal(name)
        if reason is not None:
            self.notify(reason, severity="warning")
            return
        await self.run_action(action)

    def action_help(self) -> None:
        from prunetui.tui import key_help

        key_help.show_help(self)

    async def action_quit(self) -> None:
        if self.session is None:  # still opening: nothing to wait for (the opening thread is a daemon)
            self.app.exit()
        else:
            self.jobs.quit()
