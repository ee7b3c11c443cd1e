"""Histogram of the selected layer's weights, with its target's magnitude threshold marked."""

from prunetui.tui.stats import Histogram
from prunetui.tui.text import nice_ticks, short_label
from prunetui.tui.widgets.plots.titled_plot import TitledPlot


class WeightsPlot(TitledPlot):
    def draw(
        self, layer_name: str, histogram: Histogram, target: float, threshold: float, nonzero_only: bool
    ) -> None:
        plt = self.plt
        plt.clear_data()
        counts = histogram.nonzero_counts if nonzero_only else histogram.counts
        which = "weights ≠ 0" if nonzero_only else "weights"
        cut = f" · |w| ≤ {threshold:.3g} pruned (red)" if threshold > 0 else ""
        short_cut = f" · |w| ≤ {threshold:.3g}" if threshold > 0 else ""
        label = short_label(layer_name)
        self.set_title(f"{label} {which} · target {target:.2f}{cut}", f"{label} · {target:.2f}{short_cut}")
        if any(counts):
            plt.bar(histogram.centers(), counts, width=1.0, color="blue+")
        plt.xlim(histogram.low, histogram.high)
        ticks = [histogram.low, 0.0, histogram.high]
        plt.xticks(ticks, [f"{t:.3g}" for t in ticks])
        top = max(counts, default=0)
        ticks = [int(t) for t in nice_ticks(0, max(top, 2), 3) if t == int(t)] or [0, top]  # whole counts
        plt.ylim(0, max(ticks[-1], top))
        plt.yticks(ticks)
        if 0 < threshold < histogram.high:
            plt.vline(-threshold, "red")
            plt.vline(threshold, "red")
        self.refresh()
