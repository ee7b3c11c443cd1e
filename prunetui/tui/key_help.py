"""The keys, described: the help screen's rows and the command palette's commands, both from the bindings."""

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding

from prunetui.tui import keys
from prunetui.tui.screens.help_screen import HelpScreen
from prunetui.tui.widgets.plots.runs_table import RunsTable

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


# Quit is among Textual's own commands already; moving the focus from the palette would move it in the palette.
NOT_IN_PALETTE = {"quit", "focus_next", "focus_previous"}


def _key_names(bench: "Bench", binding: Binding) -> list[str]:
    return [bench.app.get_key_display(binding.with_key(key)) for key in binding.key.split(",")]


# The help screen's sections, by action name (without its parameters); an action not listed is under Other.
SECTIONS = {
    "Layers and targets": {
        "select", "select_edge", "nudge", "set_target", "exact_target", "compound", "compound_all",
        "toggle_selected", "select_range", "select_all", "select_pattern", "toggle_lock", "cycle_bits",
    },
    "Jobs": {
        "scan", "suggest", "accept_suggestion", "discard_suggestion", "prune", "prune_further", "finetune",
        "recalibrate", "toggle_recalibrate", "quantize", "time_groups", "reset", "cancel_job", "cycle_method",
    },
    "Runs": {"show_runs", "mark_run", "diff_runs", "resume_run"},
    "Files": {"save_profile", "open_profile", "export"},
    "Views": {"next_plot", "toggle_zeros", "toggle_sensitivity_numbers", "scan_settings", "focus_next", "focus_previous"},
    "Other": set(),
}  # fmt: skip


def section_of(binding: Binding) -> str:
    action = binding.action.partition("(")[0]
    return next((name for name, actions in SECTIONS.items() if action in actions), "Other")


def help_rows(bench: "Bench") -> list[tuple[str, str]]:
    """(keys, description) for every binding of the main screen, digits folded into one row, in
    sections (a row ("", "SECTION") heads each)."""
    sections: dict[str, list[tuple[str, str]]] = {name: [] for name in SECTIONS}
    sections["Layers and targets"].append(("↑ ↓", "Select layer (or run, in the runs table)"))
    sections["Runs"].append(("⏎ on a run", keys.LOAD_RUN))
    seen_groups = set()
    for binding in [*keys.FOCUS_BINDINGS, *keys.BINDINGS]:
        rows = sections[section_of(binding)]
        if binding.group is not None:
            if binding.group not in seen_groups:
                seen_groups.add(binding.group)
                rows.append(("0-9", binding.group.description))
            continue
        rows.append((" ".join(_key_names(bench, binding)), binding.tooltip or binding.description))
    sections["Runs"] += [(f"{b.key} on a run", b.tooltip or b.description) for b in RunsTable.OWN_BINDINGS]
    sections["Other"].append(("^p", "Command palette: every action by name"))
    return [row for name, rows in sections.items() if rows for row in [("", name), *rows]]


def system_commands(bench: "Bench") -> Iterator[SystemCommand]:
    """Every binding's action by name, but NOT_IN_PALETTE's."""
    for binding in [*keys.FOCUS_BINDINGS, *keys.BINDINGS]:
        waiting = binding.action not in keys.SUGGESTION_ACTIONS or bench.check_action(binding.action, ())
        if binding.action in NOT_IN_PALETTE or not waiting:
            continue  # accept and discard show only while a suggestion waits for its answer
        yield SystemCommand(
            binding.tooltip or binding.description,
            f"key: {', '.join(_key_names(bench, binding))}",
            partial(bench.run_from_palette, binding.action),
            discover=binding.group is None,
        )
    yield SystemCommand(keys.LOAD_RUN, "key: ⏎ in the runs table", partial(bench.run_from_palette, "load_run"))


def show_help(bench: "Bench") -> None:
    bench.app.push_screen(HelpScreen(help_rows(bench)))
