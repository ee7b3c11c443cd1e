"""Accuracy per epoch of the current finetune run, the best epoch marked."""

from prunetui.core.events import EpochEnd
from prunetui.tui.text import nice_ticks, tick_text
from prunetui.tui.widgets.plots.titled_plot import TitledPlot


def accuracy_range(accuracies: list[float]) -> tuple[float, float]:
    """The epochs' own range with a margin (a flat run still gets a sensible axis)."""
    low, high = min(accuracies), max(accuracies)
    margin = max(0.5, (high - low) * 0.15)
    return max(0.0, low - margin), min(100.0, high + margin)


class FinetunePlot(TitledPlot):
    def draw(
        self, epochs: list[EpochEnd], accuracy_before: float | None, training: bool = False, stale: bool = False
    ) -> None:
        """`training`: a finetune runs, so no epochs yet means its first has not ended. `stale`: the model
        has changed since these epochs (a prune, a reset): the title says so."""
        plt = self.plt
        plt.clear_data()
        plt.xlabel("epoch")
        if not epochs:
            if training:
                self.set_title("finetuning: accuracy after each epoch", "finetuning…")
            else:
                self.set_title("no finetune run yet: f finetunes", "no finetune yet: f")
            self.refresh()
            return
        numbers = [e.epoch for e in epochs]
        accuracies = [e.accuracy for e in epochs]
        plt.plot(numbers, accuracies, color="cyan+", marker="hd")
        best = max(epochs, key=lambda e: e.accuracy)  # the first of equals, as the run keeps it
        plt.scatter([best.epoch], [best.accuracy], color="green+", marker="*")
        ticks = nice_ticks(*accuracy_range(accuracies), max(3, (self.size.height - 3) // 2), top=100.0)
        low, high = ticks[0], ticks[-1]
        plt.ylim(low, high)
        plt.yticks(ticks, [tick_text(t, ticks) for t in ticks])
        before = ""
        if accuracy_before is not None:
            before = f" · before {accuracy_before:.2f}%"
            if low <= accuracy_before <= high:
                plt.hline(accuracy_before, "red")
                before += " (red)"
        best_text = f"best {best.accuracy:.2f}% at epoch {best.epoch} (*)"
        if stale:
            self.set_title(f"finetune of the model before · {best_text}", "finetune of the model before")
        else:
            self.set_title(best_text + before, best_text)
        plt.xticks(numbers)
        self.refresh()
