"""Accuracy vs size of every run, each drawn as its number; the Pareto-best runs in green, joined.

Runs that land on the same character cell share one label (`2,5`), so none hides another's."""

from prunetui.core.runs import RunRecord
from prunetui.tui.runs_view import run_accuracy
from prunetui.tui.widgets.plots.titled_plot import TitledPlot

Point = tuple[float, float]


def _padded(low: float, high: float, margin: float, limit: float) -> tuple[float, float]:
    """The range with room around it, kept within [0, limit] (both axes are percentages)."""
    pad = max(margin, (high - low) * 0.1)
    return max(0.0, low - pad), min(limit, high + pad)


def shared_labels(
    points: dict[int, Point],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    cells: tuple[int, int],
) -> list[tuple[list[int], Point]]:
    """Runs grouped by the character cell they fall in (`cells`: the plot's width and height), each group
    drawn once at its first run's point: [(numbers, point)], oldest first."""
    (x0, x1), (y0, y1) = x_range, y_range
    columns, rows = max(1, cells[0]), max(1, cells[1])
    groups: dict[tuple[int, int], list[int]] = {}
    for number, (x, y) in points.items():
        cell = (round((x - x0) / max(x1 - x0, 1e-9) * columns), round((y - y0) / max(y1 - y0, 1e-9) * rows))
        groups.setdefault(cell, []).append(number)
    return [(numbers, points[numbers[0]]) for numbers in groups.values()]


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
        xs, ys = [x for x, _ in points.values()], [y for _, y in points.values()]
        x_range, y_range = _padded(min(xs), max(xs), 2.0, 100.0), _padded(min(ys), max(ys), 0.5, 100.0)
        # the canvas is about the widget less the axes' labels: 8 columns, 4 rows
        cells = (max(1, self.size.width - 8) // 3, max(1, self.size.height - 4))
        for numbers, (x, y) in shared_labels(points, x_range, y_range, cells):
            label = ",".join(str(n) for n in numbers)
            color = "green+" if any(n in best_numbers for n in numbers) else "gray"
            plt.text(label, x, y, color=color, style="bold", alignment="center")
        plt.xlim(*x_range)
        plt.ylim(*y_range)
        numbers = " ".join(f"#{n}" for n in best_numbers)
        self.set_title(f"accuracy vs size · Pareto-best (green): {numbers}", f"best: {numbers}")
        self.refresh()

    def on_resize(self) -> None:
        """Which runs share a cell depends on the size: the controller redraws."""
        if hasattr(self.screen, "runs_tab"):
            self.screen.runs_tab.show(self.screen.runs)
