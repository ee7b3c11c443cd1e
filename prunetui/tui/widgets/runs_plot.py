"""Accuracy vs size of every run, each drawn as its number; the Pareto-best runs in green, joined."""

from prunetui.core.runs import RunRecord
from prunetui.tui.runs_view import run_accuracy
from prunetui.tui.widgets.titled_plot import TitledPlot


def _padded(low: float, high: float, margin: float, limit: float) -> tuple[float, float]:
    """The range with room around it, kept within [0, limit] (both axes are percentages)."""
    pad = max(margin, (high - low) * 0.1)
    return max(0.0, low - pad), min(limit, high + pad)


class RunsPlot(TitledPlot):
    def draw(self, runs: list[RunRecord], best_numbers: list[int]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.xlabel("% of dense")
        points = {
            n: (r.percent_of_dense, a) for n, r in enumerate(runs, 1) if (a := run_accuracy(r)) is not None
        }
        if not points:
            self.set_title("no runs with an accuracy yet: p prunes, f finetunes", "no runs yet: p, f")
            self.refresh()
            return
        best = sorted((points[n] for n in best_numbers), key=lambda p: p[0])
        plt.plot([x for x, _ in best], [y for _, y in best], color="green", marker="dot")
        for number, (x, y) in points.items():
            color = "green+" if number in best_numbers else "gray"
            plt.text(str(number), x, y, color=color, style="bold", alignment="center")
        xs, ys = [x for x, _ in points.values()], [y for _, y in points.values()]
        plt.xlim(*_padded(min(xs), max(xs), 2.0, 100.0))
        plt.ylim(*_padded(min(ys), max(ys), 0.5, 100.0))
        numbers = " ".join(f"#{n}" for n in best_numbers)
        self.set_title(f"accuracy vs size · Pareto-best (green): {numbers}", f"best: {numbers}")
        self.refresh()
