"""Keys typed in one burst (over SSH, a paste, a laggy link) act as typed: the key that opens a dialog
and the text after it arrive together, and the text lands in the dialog's field instead of being lost."""

import pytest
from textual import events

from .conftest import wait_idle, wait_until

FULL_STOP = ("full_stop", ".")


def burst(app, keys: list[tuple[str, str | None]]) -> None:
    """All at once, as one read from the terminal delivers them: nothing handled in between."""
    for key, character in keys:
        app.post_message(events.Key(key, character))


@pytest.mark.parametrize("text", ["conv2", "*2*"])
async def test_a_pattern_typed_with_its_slash_selects(app, text):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        burst(app, [("slash", "/"), *[(c if c.isalnum() else "asterisk", c) for c in text], ("enter", None)])
        await wait_until(pilot, lambda: app.workbench.selection == {"conv2.weight"})
        await wait_idle(pilot)  # the cursor's move to the first match handled
        assert len(app.screen_stack) == 1  # the dialog took the enter too


async def test_an_exact_target_typed_with_its_enter_is_set(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("j")  # conv2
        burst(app, [("enter", None), ("0", "0"), FULL_STOP, ("3", "3"), ("5", "5"), ("enter", None)])
        await wait_until(pilot, lambda: app.workbench.session.targets["conv2.weight"] == 0.35)
        await wait_idle(pilot)
        assert len(app.screen_stack) == 1


@pytest.mark.parametrize(
    "after", [[("j", "j")], [("j", "j"), ("4", "4")]], ids=["a move", "a move and a digit"]
)
async def test_keys_typed_after_the_enter_act_on_the_workbench(app, after):
    """The target dialog open, then `0.25⏎j` in one read: the dialog reads 0.25 (not `0.25j`, refused, the
    enter lost) and `j` then moves the cursor; a digit after it sets the next layer's target, as typed
    slowly."""
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("enter")
        burst(app, [("0", "0"), FULL_STOP, ("2", "2"), ("5", "5"), ("enter", None), *after])
        await wait_until(pilot, lambda: app.workbench.session.targets["conv1.weight"] == 0.25)
        await wait_until(pilot, lambda: app.workbench.selected_layer == "conv2.weight")
        assert len(app.screen_stack) == 1
        expected = 0.4 if ("4", "4") in after else 0.0
        await wait_until(pilot, lambda: app.workbench.session.targets["conv2.weight"] == expected)


async def test_keys_typed_after_a_refused_enter_go_back_into_the_field(app):
    """The target dialog open, then `x⏎5`: `x` does not parse, the dialog stays open, and the `5` is in its
    field after the `x`."""
    from prunetui.tui.screens.fields.parsed_input import ParsedInput

    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("enter")
        burst(app, [("x", "x"), ("enter", None), ("5", "5")])
        await wait_until(pilot, lambda: len(app.screen_stack) == 2 and bool(app.screen.query(ParsedInput)))
        field = app.screen.query_one(ParsedInput)
        await wait_until(pilot, lambda: field.value == "x5")
        assert app.workbench.session.targets["conv1.weight"] == 0.0
