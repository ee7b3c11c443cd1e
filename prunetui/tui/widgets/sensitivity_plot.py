"""Accuracy vs sparsity of every scanned layer: the selected one highlighted, the others dim."""

from prunetui.core.sensitivity import lower_bound
from prunetui.tui.scan_curves import ScanCurves
from prunetui.tui.text import short_label
from prunetui.tui.widgets.titled_plot import TitledPlot


class SensitivityPlot(TitledPlot):
    def draw(self, curves: ScanCurves, selected: str | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.xlabel("sparsity")
        if curves.base_accuracy is None:
            self.set_title("no scan yet: s scans every layer", "no scan yet: s")
            self.refresh()
            return
        base, floor = curves.base_accuracy, lower_bound(curves.base_accuracy)
        for layer_name, points in curves.points.items():
            if layer_name != selected:
                plt.plot(*zip(*points, strict=True), color="gray")
        if selected in curves.points:
            plt.plot(*zip(*curves.points[selected], strict=True), color="cyan+", marker="hd")
        plt.hline(base, "green")
        plt.hline(floor, "red")
        sparsities = sorted({s for points in curves.points.values() for s, _ in points})
        accuracies = [a for points in curves.points.values() for _, a in points]
        plt.xticks(sparsities, [f"{s:g}" for s in sparsities])
        plt.ylim(min([floor, *accuracies]) - 1, max([base, *accuracies]) + 1)
        name = short_label(selected) if selected else "-"
        self.set_title(
            f"{name} (cyan) · base {base:.2f}% (green) · lower bound {floor:.2f}% (red)",
            f"{name} · base {base:.2f}% · bound {floor:.2f}%",
        )
        self.refresh()
