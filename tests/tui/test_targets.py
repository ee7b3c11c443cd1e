"""Selecting layers and editing their targets by keyboard."""

import pytest

from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.status_line import StatusLine

from .conftest import LAYERS, wait_idle


def target_cell(app, layer_name: str) -> str:
    return str(app.query_one(LayerTable).get_cell(layer_name, "target"))


async def test_rows_are_the_prunable_tensors_and_keys_select(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        table = app.query_one(LayerTable)
        assert [row.key.value for row in table.ordered_rows] == LAYERS
        assert app.workbench.selected_layer == "conv1.weight"
        await pilot.press("j", "j")
        assert app.workbench.selected_layer == "conv3.weight"
        await pilot.press("k")
        assert app.workbench.selected_layer == "conv2.weight"
        await pilot.press("down", "down", "down")
        assert app.workbench.selected_layer == "fc.weight"  # stops at the last row
        await pilot.press("up")
        assert app.workbench.selected_layer == "conv3.weight"


async def test_nudge_and_digits_set_the_selected_target_and_the_projected_size(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        status = app.query_one(StatusLine)
        assert status.status.projected_mib == pytest.approx(app.workbench.session.dense_size)
        await pilot.press("j", "+", "+", "=")
        assert app.workbench.session.targets["conv2.weight"] == pytest.approx(0.15)
        await pilot.press("-")
        assert app.workbench.session.targets["conv2.weight"] == pytest.approx(0.10)
        await pilot.press("j", "9")
        assert app.workbench.session.targets["conv3.weight"] == 0.9
        assert target_cell(app, "conv3.weight") == "0.90"
        assert status.status.projected_mib == pytest.approx(app.workbench.session.projected_size())
        assert status.status.projected_mib < 0.5 * app.workbench.session.dense_size  # conv3 is 60% of the model
        assert status.status.size_mib == pytest.approx(app.workbench.session.dense_size)  # nothing pruned yet
        await pilot.press("0", "-")  # clamped at 0
        assert app.workbench.session.targets["conv3.weight"] == 0.0
        assert app.workbench.session.targets["conv1.weight"] == 0.0


async def test_exact_value_accepts_numbers_and_percentages(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("j", "enter")
        assert isinstance(app.screen, AskDialog)
        assert app.screen.query_one(ParsedInput).value == "0"  # the current target
        await pilot.press("backspace", *"85%", "enter")
        assert not isinstance(app.screen, AskDialog)
        assert app.workbench.session.targets["conv2.weight"] == 0.85
        await pilot.press("enter")
        app.screen.query_one(ParsedInput).value = ".333"
        await pilot.press("enter")
        assert app.workbench.session.targets["conv2.weight"] == 0.333


async def test_exact_value_rejects_bad_input_with_the_reason_and_stays_open(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("enter")
        dialog = app.screen
        for typed, reason in [
            ("1.5", "must be in [0, 1]"),
            ("85", "write 85%"),
            ("abc", "not a number"),
            ("-0.1", "must be in [0, 1]"),
            ("", "type a number"),
        ]:
            dialog.query_one(ParsedInput).value = typed
            await pilot.press("enter")
            assert app.screen is dialog
            assert reason in str(dialog.query_one(".reason").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, AskDialog)
        assert app.workbench.session.targets["conv1.weight"] == 0.0


async def test_compound_rule_starts_from_the_pruned_sparsity_each_time(app):
    """The blog's SPARSITY_PREV is what the weights are pruned to: `c` then `C`, or `c` twice to correct
    beta, never compound twice; the dialog shows the base and a preview as beta is typed."""
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("C")  # nothing pruned yet: nothing to compound from
        assert not isinstance(app.screen, AskDialog)
        app.workbench.set_targets({"conv2.weight": 0.5, "conv3.weight": 0.8})
        await pilot.press("p")
        await wait_idle(pilot)
        await pilot.press("j", "c")
        assert "pruned to 0.50 now" in str(app.screen.query_one(".dialog-prompt").render())
        await pilot.press(*"0.5")
        await pilot.pause()
        assert "conv2 0.50→0.75" in str(app.screen.query_one(".preview").render())
        await pilot.press("enter")
        assert app.workbench.session.targets["conv2.weight"] == 0.75  # 0.5 + 0.5 * 0.5
        await pilot.press("c", *"0.6", "enter")  # beta corrected: from 0.5 again, not from 0.75
        assert app.workbench.session.targets["conv2.weight"] == pytest.approx(0.8)
        await pilot.press("C", *"50%", "enter")  # every pruned layer, each from its pruned sparsity
        assert app.workbench.session.targets["conv2.weight"] == pytest.approx(0.75)
        assert app.workbench.session.targets["conv3.weight"] == pytest.approx(0.9)
        assert app.workbench.session.targets["conv1.weight"] == 0.0  # not pruned: left alone
        assert target_cell(app, "conv3.weight") == "0.90"
