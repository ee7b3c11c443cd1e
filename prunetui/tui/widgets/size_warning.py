"""Shown instead of the panes when the terminal is too small for them."""

from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 60, 16


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class SizeWarning(Static):
    def show_size(self, width: int, height: int) -> None:
        self.update(
            f"terminal too small: need at least {MIN_WIDTH}x{MIN_HEIGHT}, have {width}x{height}\n\n"
            "enlarge the window (q quits)"
        )
