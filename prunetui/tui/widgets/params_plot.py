"""Parameter count per layer: remaining and pruned once the model has zeros."""

from prunetui.core.layers import LayerInfo
from prunetui.tui.text import short_label
from prunetui.tui.widgets.titled_plot import TitledPlot


class ParamsPlot(TitledPlot):
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
        plt.xticks(positions, [short_label(info.name) for info in layers])
        self.refresh()
