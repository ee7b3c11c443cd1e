"""Parameter count per layer: remaining and pruned once the model has zeros."""

from rich.console import RenderableType

from prunetui.core.layers import LayerInfo
from prunetui.tui.text import nice_ticks, short_label, tick_text
from prunetui.tui.widgets.plots.titled_plot import TitledPlot


def tick_positions(labels: list[str], width: int) -> list[int]:
    """Every k-th label, k the smallest that lets whole labels fit in `width` cells side by side (plotext
    would drop overlapping ones itself, differently from one draw to the next)."""
    if not labels:
        return []
    for stride in range(1, len(labels) + 1):
        shown = list(range(0, len(labels), stride))
        if sum(len(labels[i]) + 3 for i in shown) <= width:
            return shown
    return [0]


class ParamsPlot(TitledPlot):
    _labels: list[str] = []

    def render(self) -> RenderableType:
        """The layer names that fit the width the plot has now (it may have been hidden when drawn)."""
        shown = tick_positions(self._labels, self.size.width - 8)
        self.plt.xticks([i + 1 for i in shown], [self._labels[i] for i in shown])
        return super().render()

    def draw(self, layers: list[LayerInfo]) -> None:
        plt = self.plt
        plt.clear_data()
        positions = list(range(1, len(layers) + 1))
        remaining = [info.params * (1 - info.zero_fraction) / 1000 for info in layers]
        pruned = [info.params * info.zero_fraction / 1000 for info in layers]
        if any(p > 0 for p in pruned):
            self.set_title(
                "parameters per layer (thousands): remaining and pruned", "params (k): kept, pruned"
            )
            plt.stacked_bar(
                positions, [remaining, pruned], labels=["remaining", "pruned"], color=["blue+", "red"]
            )
        else:
            self.set_title("parameters per layer (thousands)", "params (k)")
            plt.bar(positions, remaining, color="blue+")
        self._labels = [short_label(info.name) for info in layers]
        top = max((r + p for r, p in zip(remaining, pruned, strict=True)), default=0.0)
        ticks = nice_ticks(0.0, top, max(3, (self.size.height - 3) // 2))
        plt.ylim(ticks[0], ticks[-1])
        plt.yticks(ticks, [tick_text(t, ticks) for t in ticks])
        self.refresh()
