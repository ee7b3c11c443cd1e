"""The plot tabs, declared once: their titles and ids (drawn with the first frame, before torch is imported)
and what each draws (imported once the session exists: the widgets import the engine).

Adding a plot tab is a module under tui/widgets/plots/ and one line here.
"""

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

from textual.widget import Widget


@dataclass(frozen=True)
class PlotTab:
    title: str
    id: str
    contents: str
    """`module:callable` under prunetui.tui.widgets.plots: a widget class, or a function returning the widgets."""

    def module(self) -> ModuleType:
        return import_module(f"prunetui.tui.widgets.plots.{self.contents.partition(':')[0]}")

    def widgets(self) -> list[Widget]:
        made = getattr(self.module(), self.contents.partition(":")[2])()
        return made if isinstance(made, list) else [made]


PLOT_TABS = (
    PlotTab("Weights", "weights-tab", "weights_plot:WeightsPlot"),
    PlotTab("Params", "params-tab", "params_plot:ParamsPlot"),
    PlotTab("Sensitivity", "sensitivity-tab", "sensitivity_view:SensitivityView"),
    PlotTab("Finetune", "finetune-tab", "finetune_plot:FinetunePlot"),
    PlotTab("Runs", "runs-tab", "runs_table:runs_pane"),
)
TAB_IDS = [tab.id for tab in PLOT_TABS]


def next_tab(tab_id: str) -> str:
    """The tab after `tab_id` (`t`), the first after the last."""
    return TAB_IDS[(TAB_IDS.index(tab_id) + 1) % len(TAB_IDS)]
