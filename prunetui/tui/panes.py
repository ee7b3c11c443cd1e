"""What the workbench needs the session for: the layer table and the flows the keys drive (the plots:
tui.plot_tabs).

These import torch (through the engine): the screen imports this module only once a session exists, in
the opening thread (see tui.loading) or when it is given a session directly (the tests), never for the
first frame.
"""

from typing import TYPE_CHECKING

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
from prunetui.tui.widgets.layer_table import LayerTable

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


def attach_flows(bench: "Bench") -> None:
    """The small classes the screen composes (see WorkbenchScreen's docstring)."""
    bench.jobs = JobRunner(bench)
    bench.model_flows = ModelFlows(bench)
    bench.compound = CompoundFlow(bench)  # c / C: the blog's rule from the pruned sparsity
    bench.suggest = SuggestFlow(bench)
    bench.recovery = RecoveryFlow(bench)  # b recalibrates, B turns recalibration on after prune
    bench.runs_tab = RunsController(bench)
    bench.profiles = ProfilesFlow(bench)
    bench.preview = Preview(bench)
    bench.selection_flow = SelectionFlow(bench)
    bench.scan_settings = SensitivityFlow(bench)
    bench.type_ahead = TypeAhead(bench)
    bench.bits = BitsFlow(bench)  # i cycles a layer's k-means bits, Q quantizes
    bench.speed = SpeedFlow(bench)  # speed-up goals (2x) and the latency model behind the Time column


def layer_table(screen_class: type) -> LayerTable:
    """Bound to the workbench's state (reactives of `screen_class`): call it where the screen is the active
    message pump (compose, a handler)."""
    return LayerTable(id="layers").data_bind(
        screen_class.stats,
        screen_class.targets,
        screen_class.locked_layers,
        screen_class.pending_suggestion,
        screen_class.curves,
        screen_class.tolerance,
        screen_class.selection,
        screen_class.layer_bits,
    )

