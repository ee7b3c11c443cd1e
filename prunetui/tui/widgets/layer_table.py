"""The layer table: one row per prunable tensor, keyed by its parameter name."""

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable

from prunetui.core.events import sparsity_text
from prunetui.core.layers import LayerInfo
from prunetui.core.suggest import Suggestion
from prunetui.tui.scan_curves import ScanCurves, Tolerance
from prunetui.tui.stats import ModelStats
from prunetui.tui.text import shape_text, short_label

LABELS = {
    "layer": "Layer",
    "shape": "Shape",
    "params": "Params",
    "share": "Share",
    "zeros": "Zeros",
    "target": "Target",
    "bits": "Bits",
    "safe": "Safe",
    "channels": "Chan",
    "time": "Time",
}
# Room for the widest value a column can take ("100.0%"), so that widths never change after pruning.
MIN_WIDTHS = {"share": 6, "zeros": 6, "time": 8}
ORDER = [
    "layer",
    "shape",
    "params",
    "share",
    "zeros",
    "target",
    "bits",
    "channels",
    "time",
    "safe",
]  # left to right
PRIORITY = [
    "layer",
    "target",
    "bits",
    "channels",
    "time",
    "safe",
    "zeros",
    "params",
    "share",
    "shape",
]  # kept first
FIXED = "fixed"  # the channels cell of a layer channel pruning cannot touch
COUPLED = "coupled"  # ... of a layer whose channels go with another group (the reason names it)
SELECTED_MARK = "● "  # before a selected layer's name (the selection targets edit together)


def _number(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


def target_cell(
    target: float, zero_fraction: float, proposed: float | None = None, locked: bool = False
) -> Text:
    """Highlighted while the model does not have it yet (prune applies it); dim when 0.
    A suggested change shows as `0.60→0.75`; a locked target has an `L` after it."""
    if proposed is not None and abs(proposed - target) > 5e-5:
        cell = _number(f"{sparsity_text(target)}→{sparsity_text(proposed)}", "bold magenta")
    elif abs(target - zero_fraction) > 0.005:
        cell = _number(sparsity_text(target), "bold yellow")
    else:
        cell = _number(sparsity_text(target), "dim" if target == 0 else "")
    if locked:
        cell.append(" L", style="bold cyan")
    return cell


def bits_cell(bits: int | None, shape: tuple[int, ...]) -> Text:
    """The bits set for a layer (bold), else the k-means default it gets: Han's 5 for a fully connected
    weight, 8 for a convolution (core.quantize.han_bits), dim."""
    if bits is not None:
        return _number(str(bits), "bold")
    return _number(str(5 if len(shape) == 2 else 8), "dim")


def time_cell(latency: tuple[float, float] | None) -> Text:
    """`23% -9%`: the group's share of the dense latency, and what its target saves of it (red when the
    target measures slower); empty for a layer that is not a timed group."""
    if latency is None:
        return _number("")
    share, saving = latency
    cell = _number(f"{share:.0%}", "dim" if share < 0.005 else "")
    if abs(saving) >= 0.005:
        cell.append(f" {-saving:+.0%}", style="bold green" if saving > 0 else "bold red")
    return cell


def cell_width(cell: Text | str) -> int:
    return cell.cell_len if isinstance(cell, Text) else Text(cell).cell_len


class LayerTable(DataTable):
    """`room` (cells, set by the workbench on resize) decides the columns: those that fit, by PRIORITY; the
    Safe column appears once a layer has been scanned. The Target column shows locks and a pending
    suggestion, and widens for them; the Layer column marks the selected layers.

    It follows the workbench's state through reactives the workbench binds (`data_bind`): `stats` (the layers),
    `targets`, `locked_layers`, `pending_suggestion`, `curves` (the scan), `tolerance` (what Safe means)
    and `selection`. Nothing else writes its cells.

    Its size is set from its content when the rows or columns change: sizing a DataTable with
    `auto` (from its virtual size) sometimes left it 0 rows high here under load.
    """

    # A DataTable's home/end scroll sideways; here they go to the first and the last layer (as g/G do).
    # Enter opens its dialog as the key is handled, not through a RowSelected message: keys typed right
    # after it (a burst over SSH) then land in the dialog, not on the table.
    BINDINGS = [
        Binding("home", "scroll_top", "First layer", show=False),
        Binding("end", "scroll_bottom", "Last layer", show=False),
        Binding("enter", "screen.layer_enter", "Exact target", show=False),
    ]

    room: reactive[int | None] = reactive(None)  # cells of width it may take (None: all columns)
    stats: reactive[ModelStats | None] = reactive(None, init=False)
    targets: reactive[dict[str, float]] = reactive(dict, init=False)
    locked_layers: reactive[frozenset[str]] = reactive(frozenset(), init=False)
    pending_suggestion: reactive[Suggestion | None] = reactive(None, init=False)
    curves: reactive[ScanCurves | None] = reactive(None, init=False, always_update=True)  # mutated
    tolerance: reactive[Tolerance] = reactive(Tolerance, init=False)
    selection: reactive[frozenset[str]] = reactive(frozenset(), init=False)
    # channel mode: (kept, total) output channels per group (None: a fine-grained method, no column);
    # `reasons`: why a group cannot be pruned. Layers that are no group, or cannot be pruned, are dim.
    channels: reactive[dict[str, tuple[int, int]] | None] = reactive(None, init=False)
    reasons: dict[str, str] = {}
    # k-means bits set per layer (`i`): the Bits column shows once one is set, Han's default dim elsewhere
    layer_bits: reactive[dict[str, int]] = reactive(dict, init=False)
    # channel mode with a latency model (tui.speed_flow): per timed group, its share of the dense latency
    # and the part its target saves (negative: slower), shown as `23% -9%` (None: no column)
    latency: reactive[dict[str, tuple[float, float]] | None] = reactive(None, init=False)

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._infos: dict[str, LayerInfo] = {}
        self._safe: dict[str, str] = {}  # the Safe column's text by layer (ScanCurves.safe_labels)
        self._shown_stale = False  # the Safe column is shown dim: its scan is of a model before
        self._widths: dict[str, int] = {}

    @property
    def selected(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.ordered_rows[self.cursor_row].key.value

    def _columns(self) -> list[str]:
        """The columns that fit in `room`, by PRIORITY (the Layer and Target columns always)."""
        candidates = [
            c
            for c in PRIORITY
            if (c != "safe" or self._safe)
            and (c != "channels" or self.channels is not None)
            and (c != "bits" or self.layer_bits)
            and (c != "time" or self.latency is not None)
        ]
        kept, used = [], self.styles.scrollbar_size_vertical
        for column in candidates:
            width = self._width(column) + 2 * self.cell_padding
            if len(kept) >= 2 and self.room is not None and used + width > self.room:
                continue
            kept.append(column)
            used += width
        return [c for c in ORDER if c in kept]

    def _target_cell(self, layer_name: str) -> Text:
        suggestion = self.pending_suggestion
        proposed = suggestion.targets.get(layer_name) if suggestion is not None else None
        target = self.targets.get(layer_name, 0.0)
        zeros = self._infos[layer_name].zero_fraction
        return target_cell(target, zeros, proposed, layer_name in self.locked_layers)

    def _cell(self, column: str, layer_name: str) -> Text | str:
        info = self._infos[layer_name]
        match column:
            case "layer":
                if layer_name in self.selection:
                    return Text(SELECTED_MARK + short_label(layer_name), style="bold cyan")
                style = "dim" if not self._prunable(layer_name) else ""
                return Text(" " * len(SELECTED_MARK) + short_label(layer_name), style=style)
            case "channels":
                return self._channels_cell(layer_name)
            case "time":
                return time_cell((self.latency or {}).get(layer_name))
            case "shape":
                return _number(shape_text(info.shape))
            case "params":
                return _number(f"{info.params:,}")
            case "share":
                return _number(f"{info.share * 100:.1f}%")
            case "zeros":
                return _number(f"{info.zero_fraction * 100:.1f}%")
            case "target":
                return self._target_cell(layer_name)
            case "bits":
                return bits_cell(self.layer_bits.get(layer_name), info.shape)
            case _:
                return _number(self._safe.get(layer_name, ""), "dim" if self._stale_scan() else "green")

    def _stale_scan(self) -> bool:
        """The scan the Safe column reads is of another model state than the one in hand."""
        stats, curves = self.stats, self.curves
        return curves is not None and stats is not None and curves.is_stale(stats.version)

    def _prunable(self, layer_name: str) -> bool:
        """In channel mode: a group whose output channels may be removed."""
        channels = self.channels
        return channels is None or (layer_name in channels and layer_name not in self.reasons)

    def _channels_cell(self, layer_name: str) -> Text:
        counts = (self.channels or {}).get(layer_name)
        if counts is None or layer_name in self.reasons:  # a member of another group: coupled to it
            return _number(
                FIXED if counts is not None else COUPLED if layer_name in self.reasons else "", "dim"
            )
        kept, total = counts
        return _number(f"{kept}/{total}", "bold yellow" if kept < total else "")

    def reason(self, layer_name: str) -> str | None:
        """Why `layer_name` cannot be channel-pruned (None when it can, or in fine-grained mode)."""
        if self._prunable(layer_name):
            return None
        return self.reasons.get(layer_name, "not a channel group (no output channels to remove)")

    def _width(self, column: str) -> int:
        widest = max((cell_width(self._cell(column, layer_name)) for layer_name in self._infos), default=0)
        return max(len(LABELS[column]), widest, MIN_WIDTHS.get(column, 0))

    def _rebuild(self) -> None:
        """Columns changed: rebuild everything, keeping the cursor on the same layer."""
        row = self.cursor_row
        self.clear(columns=True)
        columns = self._columns()
        widths = [self._width(column) for column in columns]
        self._widths = dict(zip(columns, widths, strict=True))
        for column, width in zip(columns, widths, strict=True):
            self.add_column(LABELS[column], key=column, width=width)
        for layer_name in self._infos:
            self.add_row(*(self._cell(column, layer_name) for column in columns), key=layer_name)
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), animate=False)
        gutter = self.styles.scrollbar_size_vertical
        self.styles.width = sum(widths) + 2 * self.cell_padding * len(columns) + gutter
        self.styles.height = self.row_count + 1  # the header

    def _update(self, layer_name: str, column: str) -> None:
        if layer_name in self._infos and column in self._columns():
            self.update_cell(layer_name, column, self._cell(column, layer_name))

    def _show_targets_column(self) -> None:
        """Every target cell again; the whole table when the column's width changes."""
        if not self._infos:
            return
        if self._width("target") != self._widths.get("target"):
            self._rebuild()
            return
        for layer_name in self._infos:
            self._update(layer_name, "target")

    def watch_room(self) -> None:
        if self._infos and self._columns() != list(self._widths):
            self._rebuild()

    def watch_selection(self, old: frozenset[str], new: frozenset[str]) -> None:
        for layer_name in old ^ new:
            self._update(layer_name, "layer")

    def watch_tolerance(self) -> None:
        self.watch_curves(self.curves)

    def watch_stats(self, stats: ModelStats | None) -> None:
        """New statistics after a job; the first fills the table."""
        if stats is None:
            return
        first = not self._infos
        self._infos = {info.name: info for info in stats.layers}
        if first:
            self._rebuild()
            return
        for layer_name in self._infos:
            for column in ("zeros", "shape", "params", "share", "safe"):  # shapes: channel pruning;
                self._update(layer_name, column)  # safe: dim once the scan is of a model before
        self._shown_stale = self._stale_scan()
        self._show_targets_column()

    def watch_targets(self, old: dict[str, float], new: dict[str, float]) -> None:
        """Only the cells whose target changed."""
        for layer_name, target in new.items():
            if old.get(layer_name) != target:
                self._update(layer_name, "target")

    def watch_channels(self, old, new) -> None:
        """The column comes and goes with channel mode; else only the counts that changed."""
        if not self._infos:
            return
        if (old is None) != (new is None) or self._width("channels") != self._widths.get("channels"):
            self._rebuild()
            return
        for layer_name in self._infos:
            if (old or {}).get(layer_name) != (new or {}).get(layer_name):
                self._update(layer_name, "channels")

    def watch_layer_bits(self, old: dict[str, int], new: dict[str, int]) -> None:
        """The column comes with the first bits set and goes with the last; else the cells that changed."""
        if not self._infos:
            return
        if bool(old) != bool(new):
            self._rebuild()
            return
        for layer_name in set(old) | set(new):
            if old.get(layer_name) != new.get(layer_name):
                self._update(layer_name, "bits")

    def watch_latency(self, old, new) -> None:
        """The column comes with a latency model; else only the cells that changed."""
        if not self._infos:
            return
        if (old is None) != (new is None) or self._width("time") != self._widths.get("time"):
            self._rebuild()
            return
        for layer_name in self._infos:
            if (old or {}).get(layer_name) != (new or {}).get(layer_name):
                self._update(layer_name, "time")

    def watch_locked_layers(self) -> None:
        self._show_targets_column()

    def watch_pending_suggestion(self) -> None:
        self._show_targets_column()

    def watch_curves(self, curves: ScanCurves | None) -> None:
        """The Safe column: rebuilt when it appears or goes, else only the cells that changed."""
        safe = {} if curves is None else curves.safe_labels(self.tolerance)
        had_column, changed = bool(self._safe), {n for n in safe if safe[n] != self._safe.get(n)}
        if self._stale_scan() != self._shown_stale:  # the same values, another style
            self._shown_stale, changed = self._stale_scan(), set(safe)
        self._safe = safe
        if bool(safe) != had_column:
            if self._infos:
                self._rebuild()
            return
        for layer_name in changed:
            self._update(layer_name, "safe")
