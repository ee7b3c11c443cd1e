"""Targets for many layers at once: space, v, V and / select; digits, +/-, enter and c edit every
selected layer; escape clears. And keys act on the pane in view (the Runs tab)."""

import pytest

from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.targets_diff_screen import TargetsDiffScreen
from prunetui.tui.selection_flow import matching_layers
from prunetui.tui.widgets.layer_table import LayerTable

from .conftest import make_app, wait_idle
from .many_layers import many_session
from .test_jobs import log_lines


@pytest.fixture
def many_app(tmp_path):
    return make_app(many_session(), tmp_path)


async def test_space_and_range_select_then_digits_and_nudges_edit_them_together(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("space")  # conv1 selected, the cursor moves on
        assert app.workbench.selection == {"conv1.weight"} and app.workbench.selected_layer == "conv2.weight"
        assert str(app.query_one(LayerTable).get_cell("conv1.weight", "layer")).startswith("●")
        await pilot.press("j", "space")  # conv3
        await pilot.press("7")
        assert app.workbench.session.targets == {
            "conv1.weight": 0.7,
            "conv2.weight": 0.0,
            "conv3.weight": 0.7,
            "fc.weight": 0.0,
        }
        await pilot.press("+", "+")
        assert app.workbench.session.targets["conv1.weight"] == pytest.approx(0.8)
        assert app.workbench.session.targets["conv3.weight"] == pytest.approx(0.8)
        assert app.workbench.session.targets["conv2.weight"] == 0.0
        assert "2 selected" in app.query_one("#table-pane").border_title
        await pilot.press("escape")  # clears the selection (no job runs)
        assert app.workbench.selection == frozenset()
        await pilot.press("k", "k", "v", "j", "j", "v")  # conv2 .. fc
        assert app.workbench.selection == {"conv2.weight", "conv3.weight", "fc.weight"}
        await pilot.press("5")
        assert [app.workbench.session.targets[n] for n in ("conv1.weight", "conv2.weight", "fc.weight")] == [
            0.8,
            0.5,
            0.5,
        ]
        await pilot.press("V")  # every layer
        assert len(app.workbench.selection) == 4
        await pilot.press("V")  # again: none
        assert app.workbench.selection == frozenset()


async def test_compound_and_exact_value_on_the_selection(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_targets({"conv2.weight": 0.5, "conv3.weight": 0.8})
        await pilot.press("p")
        await wait_idle(pilot)
        await pilot.press("j", "space", "space")  # conv2, conv3
        await pilot.press("c", *"0.5", "enter")
        assert app.workbench.session.targets["conv2.weight"] == pytest.approx(0.75)
        assert app.workbench.session.targets["conv3.weight"] == pytest.approx(0.9)
        assert app.workbench.session.targets["fc.weight"] == 0.0
        await pilot.press("enter")
        assert isinstance(app.screen, AskDialog)
        assert "2 selected layers" in str(app.screen.query_one(".dialog-prompt").render())
        app.screen.query_one(ParsedInput).value = "60%"
        await pilot.press("enter")
        assert app.workbench.session.targets["conv2.weight"] == app.workbench.session.targets["conv3.weight"] == 0.6


async def test_pattern_selects_by_glob_or_part_of_the_name(many_app):
    async with many_app.run_test(size=(80, 24)) as pilot:
        app = many_app
        await wait_idle(pilot)
        await pilot.press("slash")
        assert isinstance(app.screen, AskDialog)
        app.screen.query_one(ParsedInput).value = "layer9*"
        await pilot.press("enter")
        assert "no layer matches" in str(app.screen.query_one(".reason").render())  # stays open
        app.screen.query_one(ParsedInput).value = "layer3.*conv*"
        await pilot.press("enter")
        assert app.workbench.selection == {
            "layer3.0.conv1.weight", "layer3.0.conv2.weight", "layer3.1.conv1.weight", "layer3.1.conv2.weight"
        }  # fmt: skip
        await pilot.press("9")
        assert {n for n, t in app.workbench.session.targets.items() if t == 0.9} == app.workbench.selection


async def test_a_pattern_matches_inside_names_and_scrolls_its_first_layer_into_view(many_app):
    async with many_app.run_test(size=(80, 24)) as pilot:
        app = many_app
        await wait_idle(pilot)
        table = app.query_one(LayerTable)
        await pilot.press("slash")
        app.screen.query_one(ParsedInput).value = "4.1.conv[12]"  # a character class, no wildcard
        await pilot.press("enter")
        await pilot.pause()
        assert app.workbench.selection == {"layer4.1.conv1.weight", "layer4.1.conv2.weight"}
        assert app.workbench.selected_layer == "layer4.1.conv1.weight"
        assert (
            table.scroll_y > 0 and table.scroll_y + table.scrollable_content_region.height > table.cursor_row
        )
        assert "Selected 2 layers" in log_lines(app)[-1]
        await pilot.press("V")
        assert len(app.workbench.selection) == 21 and "Selected all 21 layers" in log_lines(app)[-1]
        await pilot.press("V")
        assert app.workbench.selection == frozenset() and log_lines(app)[-1] == "Selection cleared"


def test_matching_layers():
    names = ["conv1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "fc.weight"]
    assert matching_layers("downsample", names) == ["layer1.0.downsample.0.weight"]
    assert matching_layers("layer1.*", names) == names[1:3]
    assert matching_layers("*conv1", names) == ["conv1.weight", "layer1.0.conv1.weight"]
    assert matching_layers("CONV[1]", names) == ["conv1.weight", "layer1.0.conv1.weight"]  # as *conv[1]*
    assert matching_layers("0.conv?", names) == ["layer1.0.conv1.weight"]
    assert matching_layers("conv1.weight", names) == ["conv1.weight", "layer1.0.conv1.weight"]
    with pytest.raises(ValueError, match="no layer matches"):
        matching_layers("layer4.*", names)


async def test_in_the_runs_tab_keys_act_on_the_runs(recording_app):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("p")
        await wait_idle(pilot)
        await pilot.press("5", "p")
        await wait_idle(pilot)
        targets = dict(app.workbench.session.targets)
        layer = app.workbench.selected_layer
        await pilot.press("u", "k", "m", "j")
        assert app.workbench.selected_layer == layer  # j/k moved the runs' cursor, not the layers'
        await pilot.press("3", "plus", "space")
        assert app.workbench.session.targets == targets and app.workbench.selection == frozenset()  # no layer keys here
        footer_keys = {key for key, b in app.screen.active_bindings.items() if b.binding.show}
        assert "3" not in footer_keys
        await pilot.press("d")
        assert isinstance(app.screen, TargetsDiffScreen)
        assert "run 1" in app.screen.title_text and "run 2" in app.screen.title_text  # not a run with itself
        await pilot.press("escape", "t")  # the next plot: the runs go out of view, the layers have the keys
        assert not app.workbench.runs_focused()
        await pilot.press("3")
        assert app.workbench.session.targets[app.workbench.selected_layer] == 0.3
