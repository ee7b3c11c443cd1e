"""Accuracy vs sparsity of every scanned layer: the selected one highlighted, the others dim, the base
accuracy (green) and the floor of the tolerated drop (red) drawn over them. Round y ticks, none above 100."""

from prunetui.tui.scan_curves import LAB_TOLERANCE, ScanCurves, Tolerance
from prunetui.tui.text import nice_ticks, tick_text
from prunetui.tui.widgets.plots.titled_plot import TitledPlot


class SensitivityPlot(TitledPlot):
    def draw(self, curves: ScanCurves, selected: str | None, tolerance: Tolerance = LAB_TOLERANCE) -> None:
        plt = self.plt
        plt.clear_data()
        self.set_title("")
        if curves.base_accuracy is None:
            self.refresh()
            return
        base, floor = curves.base_accuracy, tolerance.floor(curves.base_accuracy)
        sparsities = curves.sparsities()
        for layer_name, points in curves.points.items():
            if layer_name != selected:
                plt.plot(*zip(*points, strict=True), color="gray", marker="braille")
        if sparsities:  # the reference lines go over the dim curves (plotext draws hline under them)
            ends = [sparsities[0], sparsities[-1]]
            plt.plot(ends, [base, base], color="green", marker="hd")
            plt.plot(ends, [floor, floor], color="red", marker="hd")
        if selected in curves.points:
            plt.plot(*zip(*curves.points[selected], strict=True), color="cyan+", marker="hd")
        accuracies = [a for points in curves.points.values() for _, a in points]
        rows = max(3, (self.size.height - 3) // 2)
        ticks = nice_ticks(min([floor, *accuracies]), max([base, *accuracies]), rows, top=100.0)
        ticks = [t for t in ticks if t >= 0] or [0.0]
        plt.ylim(ticks[0], ticks[-1])
        plt.yticks(ticks, [tick_text(t, ticks) for t in ticks])
        if sparsities:
            plt.xticks(sparsities, [f"{s:g}" for s in sparsities])
        self.refresh()
