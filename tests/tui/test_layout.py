"""Layout at both ends of the size range, the help screen and the command palette."""

from textual.command import CommandPalette
from textual.widgets import Input

from prunetui.core.pruning import magnitude_threshold
from prunetui.tui.key_help import NOT_IN_PALETTE
from prunetui.tui.keys import LOAD_RUN, SUGGESTION_ACTIONS
from prunetui.tui.screens.help_screen import HelpScreen
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.params_plot import ParamsPlot
from prunetui.tui.widgets.plots.weights_plot import WeightsPlot

from .conftest import wait_idle


def column_keys(app) -> list[str]:
    return [column.key.value for column in app.query_one(LayerTable).ordered_columns]


def fully_visible(app, selector: str) -> bool:
    region = app.query_one(selector).region
    return region.height > 0 and app.screen.region.contains_region(region)


async def test_reflows_between_80x24_and_200x60_keeping_the_selection(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("j", "j")
        assert app.screen.has_class("-narrow")
        table, plots = app.query_one(LayerTable).region, app.query_one("#plots").region
        assert table.bottom <= plots.y  # stacked
        assert plots.height >= 9 and table.height >= 5  # both still usable
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        assert app.screen.has_class("-wide")
        assert column_keys(app) == ["layer", "shape", "params", "share", "zeros", "target"]
        table, plots = app.query_one(LayerTable).region, app.query_one("#plots").region
        assert table.right <= plots.x  # side by side
        assert app.workbench.selected_layer == "conv3.weight"
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert column_keys(app)[0] == "layer" and "target" in column_keys(app)
        assert app.query_one(LayerTable).region.width <= 60
        assert app.workbench.selected_layer == "conv3.weight"
        for selector in ("StatusLine", "LayerTable", "#plots", "JobLog", "Footer"):
            assert fully_visible(app, selector), selector


async def test_the_focused_pane_is_marked(app):
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_idle(pilot)
        panes = [app.query_one(s) for s in ("#table-pane", "#plots", "JobLog")]

        def border_colors():
            return [pane.styles.border_top[1] for pane in panes]

        first = border_colors()
        assert first[0] != first[1] == first[2]  # the table has focus at start
        await pilot.press("tab")
        second = border_colors()
        assert second[1] != second[0] == second[2]


async def test_help_lists_every_key(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = dict(app.workbench.help_rows())
        expected = ["s", "p", "f", "x esc", "c", "C", "^s", "o", "w", "r", "q", "?", "+ =", "-", "0-9", "⏎"]
        new = ["a", "y ⏎", "n", "l", "u", "m", "d", "R", "⏎ on a run"]
        for keys in [*expected, *new, "z", "t", "j", "k", "space", "v", "V", "/", "T", "S"]:
            assert keys in rows, keys
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_every_action_is_in_the_command_palette(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        commands = list(app.get_system_commands(app.screen))
        titles = {command.title for command in commands}
        for binding in app.BINDINGS:
            title = binding.tooltip or binding.description
            if binding.action in SUGGESTION_ACTIONS:  # only with a suggestion waiting for its answer
                assert title not in titles, binding.action
            elif binding.action not in NOT_IN_PALETTE:
                assert title in titles, binding.action
        assert "Quit" in titles
        assert LOAD_RUN in titles
        app.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        app.screen.query_one(Input).value = "prune the dense"
        await pilot.pause(0.3)  # the palette searches in the background
        await pilot.press("enter")
        await wait_idle(pilot)
        assert set(app.workbench.session.state.masks) == {"conv2.weight"}


async def test_weights_plot_marks_the_threshold_and_z_hides_zeros(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        plot = app.query_one(WeightsPlot)
        await pilot.press("j", "8")
        threshold = magnitude_threshold(app.workbench.session.state.opened["conv2.weight"], 0.8)
        assert f"|w| ≤ {threshold:.3g} pruned" in plot.render().plain
        await pilot.press("p")
        await wait_idle(pilot)
        histogram = app.workbench.stats.histograms["conv2.weight"]
        assert sum(histogram.counts) - sum(histogram.nonzero_counts) >= 0.8 * 1152  # the zeros
        await pilot.press("z")
        assert app.workbench.nonzero_only and "weights ≠ 0" in plot.render().plain
        await pilot.press("t")  # Params: remaining and pruned, now that there are zeros
        assert "remaining and pruned" in app.query_one(ParamsPlot).render().plain
