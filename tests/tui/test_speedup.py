"""Speed-up goals in the app: `2x` in a plans channel widths in a job (a timer injected: no timing noise),
the profile pending until y (which switches to the channel method); L times the groups; the Time column
and the header's predicted speed-up follow the targets."""

import torch
from fake_timers import StructureTimer

from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.text import measured_speedup_text
from prunetui.tui.widgets.layer_table import LayerTable, time_cell
from prunetui.tui.widgets.status_line import Status, fitted_status_text
from prunetui.workflow.channel_steps import slower_warning
from prunetui.workflow.planning import Effort

from .conftest import make_app, make_session, wait_idle, wait_until

TINY = Effort(fractions=(0.75, 0.5, 0.25), table_run_time=0.001, sweeps=1, measure_run_time=0.001,
              measure_rounds=1, rounds=2, keep=1, check_profiles=1)  # fmt: skip


def speed_app(trained_state, tmp_path):
    app = make_app(make_session(trained_state, workdir=tmp_path), tmp_path)
    return app


def inject(app) -> None:
    app.workbench.speed.effort = TINY
    app.workbench.speed.timer = StructureTimer(torch.zeros(1, 1, 8, 8))


def log_text(app) -> str:
    return "\n".join(app.query_one("#job-log").texts)


def cell(app, layer_name: str, column: str) -> str:
    return str(app.query_one(LayerTable).get_cell(layer_name, column)).strip()


async def test_a_speedup_goal_plans_widths_that_y_accepts_in_channel_mode(trained_state, tmp_path):
    app = speed_app(trained_state, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        inject(app)
        await pilot.press("a")  # no scan needed for a speed-up
        assert isinstance(app.screen, AskDialog)
        app.screen.query_one(ParsedInput).value = "1.5x"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.workbench.pending_suggestion is not None, timeout=60)
        await wait_idle(pilot)
        suggestion = app.workbench.pending_suggestion
        assert suggestion.source == "speedup" and any(t > 0 for t in suggestion.targets.values())
        assert "held-out images" in log_text(app) and "Latency model error" in log_text(app)
        assert app.workbench.method == "magnitude"
        await pilot.press("y")
        await wait_until(pilot, lambda: app.workbench.method == "channel")
        assert app.workbench.session.targets == suggestion.targets
        # the Time column (the plan's latency model) and the predicted speed-up of the targets
        await wait_until(pilot, lambda: app.query_one(LayerTable).latency is not None)
        assert "time" in [c.key.value for c in app.query_one(LayerTable).ordered_columns]
        pruned = [n for n, t in suggestion.targets.items() if t > 0]
        await wait_until(pilot, lambda: "-" in cell(app, pruned[0], "time"))
        await wait_until(pilot, lambda: app.workbench.preview.speedup is not None and app.workbench.preview.speedup >= 1.5)
        assert app.size.width == 80
        # the plan was measured after BN recalibration: B is on, and no "sum of scan drops" is claimed
        assert app.workbench.recovery.recalibrate_bn and "+BN" in app.workbench.recovery_marks
        projected = app.workbench.preview.cost.size_mib
        await pilot.press("p")
        await wait_idle(pilot)
        assert app.workbench.session.state.channel_pruned and app.workbench.session.current_size() == projected
        assert "sum of scan drops" not in log_text(app)
        assert app.workbench.suggest.shown_prediction() is None


async def test_l_times_the_groups_for_the_time_column(trained_state, tmp_path):
    app = speed_app(trained_state, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        inject(app)
        await pilot.press("M", "M")  # channel mode
        await wait_until(pilot, lambda: app.workbench.method == "channel")
        await pilot.press("L")
        await wait_until(pilot, lambda: app.workbench.speed.table is not None, timeout=60)
        await wait_idle(pilot)
        await wait_until(pilot, lambda: app.query_one(LayerTable).latency is not None)
        share = cell(app, "conv2.weight", "time")
        assert share.endswith("%") and "Latency model measured" in log_text(app)
        app.workbench.set_target("conv2.weight", 0.5)
        await wait_until(pilot, lambda: cell(app, "conv2.weight", "time") != share)
        assert "%" in cell(app, "conv2.weight", "time").split()[-1]
        assert "~" in str(app.query_one("#status").render())  # the predicted speed-up in the header


def test_time_cells_and_the_header_speedup_fit_80_columns():
    assert str(time_cell((0.234, 0.091))) == "23% -9%"
    assert str(time_cell((0.1, -0.05))) == "10% +5%"  # slower: red
    assert str(time_cell(None)) == ""
    status = Status("torchvision:resnet18:10", "cpu", "channel", 93.1, 90.2, 10.0, 42.7, 20.0,
                    projected_macs=300_000_000, speedup="1.83x", projected_speedup=2.05)  # fmt: skip
    line = fitted_status_text(status, 80)
    assert line.cell_len <= 80 and "1.83x" in line.plain and "~2.05x" in line.plain


def test_the_header_says_a_speedup_within_noise_as_the_log_does():
    """0.32 ms vs 0.49 ms dense, but the halves 0.73-3.68x apart: `~1.0x`, not 1.54x."""
    noisy = {"latency_ms_dense": 0.49, "latency_ms": 0.32, "latency_spread_ms_dense": 0.6,
             "latency_spread_ms": 0.2, "macs": 1, "macs_dense": 2, "params": 1, "params_dense": 2}  # fmt: skip
    assert measured_speedup_text(noisy) == "~1.0x"
    assert (
        measured_speedup_text({**noisy, "latency_spread_ms_dense": 0.01, "latency_spread_ms": 0.01})
        == "1.53x"
    )


def test_a_channel_prune_measured_slower_is_warned():
    cost = {"latency_ms_dense": 1.0, "latency_ms": 1.2, "latency_batch": 8,
            "latency_ms_dense_at_batch": 4.0, "latency_ms_at_batch": 2.0}  # fmt: skip
    assert "0.83x at batch 1" in slower_warning(cost) and "batch 8" not in slower_warning(cost)
    assert slower_warning({**cost, "latency_ms": 1.02}) is None  # within a single timing's noise
    assert slower_warning({"latency_ms": None, "latency_ms_dense": None}) is None
