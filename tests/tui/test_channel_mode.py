"""Channel mode in the app: the method as a mode, groups with kept channels, projected MACs, pruning that
swaps in a smaller model, and the Runs tab's MACs and speed-up."""

import time

from textual.widgets import Label

from prunetui.core.session import Session
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.runs_table import RunsTable
from prunetui.tui.widgets.status_line import StatusLine

from .conftest import TinyNet, make_app, make_session, tiny_splits, wait_idle, wait_until


def cell(app, layer_name: str, column: str) -> str:
    return str(app.query_one(LayerTable).get_cell(layer_name, column)).strip()


def header(app) -> str:
    return str(app.query_one(StatusLine).render())


async def to_channel_mode(app, pilot) -> None:
    await wait_idle(pilot)
    await pilot.press("M", "M")  # magnitude -> taylor -> channel
    await wait_until(pilot, lambda: app.workbench.method == "channel")
    await wait_until(pilot, lambda: app.query_one(LayerTable).channels is not None)
    await wait_idle(pilot)  # the listing job has ended too: a key typed now is not held for after it


async def test_channel_mode_shows_groups_and_projected_macs(trained_state, tmp_path):
    app = make_app(make_session(trained_state, workdir=tmp_path), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await to_channel_mode(app, pilot)
        assert "channel" in header(app)
        table = app.query_one(LayerTable)
        assert "channels" in [c.key.value for c in table.ordered_columns]
        assert cell(app, "conv1.weight", "channels") == "8/8"
        assert cell(app, "fc.weight", "channels") == "fixed"  # the classes: greyed, with a reason
        dense_macs = app.workbench.preview.cost.macs
        app.workbench.set_target("conv1.weight", 0.5)
        await wait_until(pilot, lambda: cell(app, "conv1.weight", "channels") == "4/8")
        await wait_until(pilot, lambda: app.workbench.preview.cost is not None and app.workbench.preview.cost.macs < dense_macs)
        await wait_until(pilot, lambda: "MACs" in header(app))
        app.workbench.set_target("fc.weight", 0.5)  # cannot be pruned: stays 0, the reason is shown
        assert app.workbench.session.targets["fc.weight"] == 0.0
        assert "cannot be channel-pruned" in "\n".join(app.query_one("#job-log").texts)


async def test_channel_prune_swaps_in_the_smaller_model_and_runs_show_speed(trained_state, tmp_path):
    session = make_session(trained_state, workdir=tmp_path)
    app = make_app(session, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await to_channel_mode(app, pilot)
        app.workbench.set_targets({"conv1.weight": 0.5, "conv2.weight": 0.5})
        await pilot.press("p")
        await wait_idle(pilot)
        assert session.state.channel_pruned and session.state.masks == {}
        assert session.model.conv1.out_channels == 4 and session.model.conv2.out_channels == 8
        run = session.current_run
        assert run.method == "channel" and run.cost["macs"] < run.cost["macs_dense"]
        assert run.cost["latency_ms"] > 0 and run.cost["params"] < run.cost["params_dense"]
        await pilot.press("u")
        await wait_until(pilot, lambda: app.query_one(RunsTable).row_count == 1)
        runs = app.query_one(RunsTable)
        assert str(runs.get_cell(run.id, "speedup")).endswith("x")
        assert float(str(runs.get_cell(run.id, "macs"))) == round(run.cost["macs"] / 1e6, 1)
        await pilot.press("tab", "r")  # reset: the dense model back
        await pilot.press("y")
        await wait_idle(pilot)
        assert not session.state.channel_pruned and session.model.conv1.out_channels == 8


async def test_channel_mode_sets_a_target_it_cannot_use_to_0_and_says_so(trained_state, tmp_path):
    app = make_app(make_session(trained_state, workdir=tmp_path), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("fc.weight", 0.5)  # fine-grained: allowed; the classes cannot lose channels
        app.workbench.set_target("conv1.weight", 0.5)
        await to_channel_mode(app, pilot)  # the groups and their counts show all the same
        assert (
            cell(app, "conv1.weight", "channels") == "4/8" and cell(app, "fc.weight", "channels") == "fixed"
        )
        assert "channel cannot prune fc" in "\n".join(app.query_one("#job-log").texts)  # why it went to 0
        # a target the method cannot use goes to 0 when it takes over (the other stays): the projection
        # is of the targets shown, not n/a
        assert app.workbench.session.targets["fc.weight"] == 0.0 and app.workbench.session.targets["conv1.weight"] == 0.5
        await wait_until(pilot, lambda: app.workbench.preview.cost is not None)


class SlowNet(TinyNet):
    """A forward of 0.2 s: listing its channel groups (a trace, then forward checks) takes seconds."""

    def forward(self, x):
        time.sleep(0.2)
        return super().forward(x)


async def test_listing_groups_shows_progress_and_x_cancels_it(trained_state, tmp_path):
    model = SlowNet()
    model.load_state_dict(trained_state)
    session = Session(model, tiny_splits(), label="slow")
    app = make_app(session, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot, timeout=60)
        await pilot.press("M")  # taylor: its units are the layers, no job
        await wait_until(pilot, lambda: app.workbench.method == "taylor")
        await pilot.press("M")  # channel: its groups are listed in a job first
        title = app.query_one("#job-title", Label)
        await wait_until(pilot, lambda: str(title.render()).startswith("channel groups "))
        await pilot.press("x")
        await wait_idle(pilot, timeout=60)
        assert app.workbench.method == "taylor" and session.method.name == "taylor"
        assert "Listing channel groups cancelled: the model is as it was" in app.query_one("#job-log").texts
