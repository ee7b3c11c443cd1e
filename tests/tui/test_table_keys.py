"""Home/End and g/G: the first and the last layer (the row scrolled into view), or run in the Runs tab."""

import pytest

from prunetui.core.runs import RunStore
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.runs_table import RunsTable

from .conftest import make_app, make_session, wait_idle
from .many_layers import many_session
from .test_runs import record


@pytest.fixture
def many_app(tmp_path):
    return make_app(many_session(), tmp_path)


@pytest.mark.parametrize(("last", "first"), [("end", "home"), ("G", "g")])
async def test_keys_go_to_the_last_and_the_first_layer(many_app, last, first):
    async with many_app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app, table = many_app, many_app.query_one(LayerTable)
        assert app.focused is table and table.region.height < table.row_count + 1  # it scrolls
        await pilot.press(last)
        assert app.workbench.selected_layer == "fc.weight"
        assert table.scroll_y > 0  # the last row in view
        await pilot.press(first)
        assert app.workbench.selected_layer == "conv1.weight"
        assert table.scroll_y == 0


async def test_they_act_on_the_layers_from_another_pane_too(many_app):
    """As j and k do: with the plots focused, the layer table's cursor moves."""
    async with many_app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await pilot.press("tab")
        assert not isinstance(many_app.focused, LayerTable)
        for last, first in (("end", "home"), ("G", "g")):
            await pilot.press(last)
            assert many_app.workbench.selected_layer == "fc.weight", last
            await pilot.press(first)
            assert many_app.workbench.selected_layer == "conv1.weight", first


async def test_in_the_runs_tab_they_move_the_runs_cursor(trained_state, tmp_path):
    session = make_session(trained_state, workdir=tmp_path)
    store = RunStore(tmp_path)
    for number in (1, 2, 3):
        store.save(record(session, number, {"conv2.weight": number / 10}))
    app = make_app(session, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("u")
        runs = app.query_one(RunsTable)
        assert app.focused is runs
        for last, first in (("end", "home"), ("G", "g")):
            await pilot.press(last)
            assert runs.cursor_row == 2, last
            await pilot.press(first)
            assert runs.cursor_row == 0, first
        assert app.workbench.selected_layer == "conv1.weight"  # the layers' cursor did not move
