"""What the workbench needs the session for: the layer table, the plots and the flows the keys drive.

These import torch (through the engine): the app imports this module only once a session exists, in the
opening thread (see tui.loading) or when it is given a session directly (the tests), never for the first
frame.
"""

from typing import TYPE_CHECKING

from textual.widget import Widget

from prunetui.tui.bits_flow import BitsFlow
from prunetui.tui.compound_flow import CompoundFlow
from prunetui.tui.job_runner import JobRunner
from prunetui.tui.model_flows import ModelFlows
from prunetui.tui.preview import Preview
from prunetui.tui.profiles_flow import ProfilesFlow
from prunetui.tui.recovery_flow import RecoveryFlow
from prunetui.tui.runs_controller import RunsController
from prunetui.tui.selection_flow import SelectionFlow
from prunetui.tui.sensitivity_flow import SensitivityFlow
from prunetui.tui.speed_flow import SpeedFlow
from prunetui.tui.suggest_flow import SuggestFlow
from prunetui.tui.type_ahead import TypeAhead
from prunetui.tui.widgets.finetune_plot import FinetunePlot
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.params_plot import ParamsPlot
from prunetui.tui.widgets.runs_plot import RunsPlot
from prunetui.tui.widgets.runs_table import RunDetails, RunsTable
from prunetui.tui.widgets.sensitivity_view import SensitivityView
from prunetui.tui.widgets.weights_plot import WeightsPlot

if TYPE_CHECKING:
    from prunetui.tui.app import PruneApp


def attach_flows(app: "PruneApp") -> None:
    """The small classes the app composes (see PruneApp's docstring)."""
    app.jobs = JobRunner(app)
    app.model_flows = ModelFlows(app)
    app.compound = CompoundFlow(app)  # c / C: the blog's rule from the pruned sparsity
    app.suggest = SuggestFlow(app)
    app.recovery = RecoveryFlow(app)  # b recalibrates, B turns recalibration on after prune
    app.runs_tab = RunsController(app)
    app.profiles = ProfilesFlow(app)
    app.preview = Preview(app)
    app.selection_flow = SelectionFlow(app)
    app.scan_settings = SensitivityFlow(app)
    app.type_ahead = TypeAhead(app)
    app.bits = BitsFlow(app)  # i cycles a layer's k-means bits, Q quantizes
    app.speed = SpeedFlow(app)  # speed-up goals (2x) and the latency model behind the Time column


def layer_table(app_class: "type[PruneApp]") -> LayerTable:
    """Bound to the app's state: call it where the app is the active message pump (compose, a handler)."""
    return LayerTable(id="layers").data_bind(
        app_class.stats,
        app_class.targets,
        app_class.locked_layers,
        app_class.pending_suggestion,
        app_class.curves,
        app_class.tolerance,
        app_class.selection,
        app_class.layer_bits,
    )


def plot_widgets(tab_id: str) -> list[Widget]:
    """The contents of one plot tab (the tabs themselves are drawn with the first frame)."""
    return {
        "weights-tab": lambda: [WeightsPlot()],
        "params-tab": lambda: [ParamsPlot()],
        "sensitivity-tab": lambda: [SensitivityView()],
        "finetune-tab": lambda: [FinetunePlot()],
        "runs-tab": lambda: [RunsTable(id="runs"), RunDetails(id="run-details"), RunsPlot()],
    }[tab_id]()
