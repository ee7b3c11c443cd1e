"""Many layers at once: the selection (space toggles a layer, v selects a range, V every layer, / a name
pattern, escape clears it) and the target edits that act on it. With layers selected, digits, +/-, enter
and c edit every selected layer; with none, the layer under the cursor. Targets go through the session
(`bench.set_targets`), as a single layer's do."""

import fnmatch
from functools import partial
from typing import TYPE_CHECKING

from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.text import parse_fraction, short_label
from prunetui.tui.widgets.layer_table import LayerTable

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


def matching_layers(pattern: str, layer_names: list[str]) -> list[str]:
    """Layers whose name contains a match of a glob (`layer3.*conv*`, `conv[34]`) or the text
    (`downsample`), case-insensitively: `*pattern*`, which takes in the whole-name match of `pattern`.
    Raise ValueError when the pattern is empty or matches none."""
    text = pattern.strip().lower()
    if not text:
        raise ValueError("type a glob such as layer3.* or a part of a name such as downsample")
    matches = [n for n in layer_names if fnmatch.fnmatchcase(n.lower(), f"*{text}*")]
    if not matches:
        raise ValueError(f"no layer matches {pattern.strip()}")
    return matches


class SelectionFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.range_start: str | None = None  # the first `v` of a range

    @property
    def table(self) -> LayerTable:
        return self.bench.query_one(LayerTable)

    def _names(self) -> list[str]:
        return [row.key.value for row in self.table.ordered_rows]

    def edited_layers(self) -> list[str]:
        """What a target edit acts on: the selected layers in table order, else the layer under the cursor."""
        if self.bench.selection:
            return [n for n in self._names() if n in self.bench.selection]
        selected = self.bench.selected_layer
        return [] if selected is None else [selected]

    # --- choosing layers -------------------------------------------------------------------------
    def toggle(self) -> None:
        """space: the layer under the cursor in or out of the selection; the cursor moves on."""
        layer_name = self.bench.selected_layer
        if layer_name is None:
            return
        self.bench.selection = self.bench.selection ^ {layer_name}
        self.bench.action_select(1)

    def select_range(self) -> None:
        """v marks where a range starts; v again selects every layer from there to the cursor."""
        bench, cursor = self.bench, self.bench.selected_layer
        if cursor is None:
            return
        if self.range_start is None or self.range_start not in self._names():
            self.range_start = cursor
            bench.selection = bench.selection | {cursor}
            bench.notify(f"Range from {short_label(cursor)}: move to its other end, then v")
            return
        names = self._names()
        first, last = sorted((names.index(self.range_start), names.index(cursor)))
        self.range_start = None
        bench.selection = bench.selection | set(names[first : last + 1])
        bench.write_log(f"Selected {counted_layers(len(bench.selection))}: digits, +/-, enter and c edit them together")

    def select_all(self) -> None:
        """V: every layer, or none when every layer is selected already."""
        names = set(self._names())
        self.range_start = None
        if names <= self.bench.selection:
            self.bench.selection = frozenset()
            self.bench.write_log("Selection cleared")
            return
        self.bench.selection = frozenset(names)
        self.bench.write_log(f"Selected all {len(names)} layers: digits, +/-, enter and c edit them together")

    def ask_pattern(self) -> None:
        dialog = AskDialog(
            "Select layers by name",
            "a glob (layer3.*, *downsample*) or a part of the name (conv1)",
            partial(matching_layers, layer_names=self._names()),
        )
        self.bench.app.push_screen(dialog, self._pattern_chosen)

    def _pattern_chosen(self, matches: list[str] | None) -> None:
        if matches is None:
            return
        self.range_start = None
        self.bench.selection = frozenset(matches)
        self.bench.write_log(f"Selected {counted_layers(len(matches))}: digits, +/-, enter and c edit them together")
        first = next(n for n in self._names() if n in self.bench.selection)
        self.table.move_cursor(row=self.table.get_row_index(first), animate=False, scroll=True)

    def clear(self) -> None:
        self.range_start = None
        self.bench.selection = frozenset()

    # --- editing their targets -------------------------------------------------------------------
    def set_all(self, value: float) -> None:
        self.bench.set_targets({name: value for name in self.edited_layers()})

    def nudge_all(self, delta: float) -> None:
        targets = self.bench.session.targets
        self.bench.set_targets({name: targets[name] + delta for name in self.edited_layers()})

    def _what(self, layer_names: list[str]) -> str:
        return layer_names[0] if len(layer_names) == 1 else f"{len(layer_names)} selected layers"

    def ask_exact(self) -> None:
        bench, layer_names = self.bench, self.edited_layers()
        if not layer_names:
            return
        values = {bench.targets[name] for name in layer_names}
        dialog = AskDialog(
            "Target sparsity",
            f"{self._what(layer_names)}: a number in [0, 1] or a percentage",
            parse_fraction,
            f"{values.pop():g}" if len(values) == 1 else "",
        )
        bench.app.push_screen(dialog, lambda value: value is not None and self.set_all_of(layer_names, value))

    def set_all_of(self, layer_names: list[str], value: float) -> None:
        self.bench.set_targets({name: value for name in layer_names})

    def ask_compound(self) -> None:
        """c: the blog's rule on each edited layer (tui.compound_flow)."""
        layer_names = self.edited_layers()
        if layer_names:
            self.bench.compound.ask(self._what(layer_names), layer_names)

    def show_count(self) -> None:
        """The table pane's title says how many layers are selected."""
        count = len(self.bench.selection)
        title = "Layers" if not count else f"Layers · {count} selected (esc clears)"
        self.bench.query_one("#table-pane").border_title = title


def counted_layers(count: int) -> str:
    return f"{count} layer{'s' * (count != 1)}"
