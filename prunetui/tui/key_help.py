"""The keys, described: the help screen's rows and the command palette's commands, both from the bindings."""

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding

from prunetui.tui import keys
from prunetui.tui.screens.help_screen import HelpScreen
from prunetui.tui.widgets.runs_table import RunsTable

if TYPE_CHECKING:
    from prunetui.tui.app import PruneApp


# Quit is among Textual's own commands already; moving the focus from the palette would move it in the palette.
NOT_IN_PALETTE = {"quit", "focus_next", "focus_previous"}


def _key_names(app: "PruneApp", binding: Binding) -> list[str]:
    return [app.get_key_display(binding.with_key(key)) for key in binding.key.split(",")]


def help_rows(app: "PruneApp") -> list[tuple[str, str]]:
    """(keys, description) for every binding of the main screen, digits folded into one row."""
    rows = [("↑ ↓", "Select layer (or run, in the runs table)"), ("⏎ on a run", keys.LOAD_RUN)]
    seen_groups = set()
    for binding in app.BINDINGS:
        if binding.group is not None:
            if binding.group not in seen_groups:
                seen_groups.add(binding.group)
                rows.append(("0-9", binding.group.description))
            continue
        rows.append((" ".join(_key_names(app, binding)), binding.tooltip or binding.description))
    rows += [(f"{b.key} on a run", b.tooltip or b.description) for b in RunsTable.OWN_BINDINGS]
    rows.append(("^p", "Command palette: every action by name"))
    return rows


def system_commands(app: "PruneApp") -> Iterator[SystemCommand]:
    """Every binding's action by name, but NOT_IN_PALETTE's."""
    for binding in app.BINDINGS:
        if binding.action in NOT_IN_PALETTE:
            continue
        yield SystemCommand(
            binding.tooltip or binding.description,
            f"key: {', '.join(_key_names(app, binding))}",
            partial(app.run_from_palette, binding.action),
            discover=binding.group is None,
        )
    yield SystemCommand(keys.LOAD_RUN, "key: ⏎ in the runs table", partial(app.run_from_palette, "load_run"))


def show_help(app: "PruneApp") -> None:
    app.push_screen(HelpScreen(help_rows(app)))
