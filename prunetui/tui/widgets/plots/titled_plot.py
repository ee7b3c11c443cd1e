"""A plotext plot whose title shortens to fit: plotext leaves out a title wider than the plot."""

from rich.console import RenderableType
from textual_plotext import PlotextPlot


class TitledPlot(PlotextPlot):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._titles = ("", "")

    def set_title(self, title: str, short_title: str | None = None) -> None:
        self._titles = (title, short_title or title)

    def render(self) -> RenderableType:
        title, short_title = self._titles
        self.plt.title(title if len(title) <= self.size.width - 2 else short_title)
        return super().render()
