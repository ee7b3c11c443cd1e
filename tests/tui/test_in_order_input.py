"""Keys that reach an Input in one read (a fast typist over SSH) act in the order they were typed."""

import pytest
from textual import events
from textual.app import App

from prunetui.tui.screens.fields.in_order_input import InOrderInput

SEQUENCES = [
    ["backspace", "3", "left", "9"],
    ["1", "2", "backspace", "backspace", "7"],
    ["home", "x", "end", "backspace", "delete", "left", "left", "y"],
    ["ctrl+u", "4", "ctrl+a", "5"],
]
CHARACTERS = {"backspace": "\x7f", "delete": None, "left": None, "home": None, "end": None}


class OneInput(App):
    def compose(self):
        yield InOrderInput(value="abc", select_on_focus=False)


async def typed(keys: list[str], at_once: bool) -> str:
    app = OneInput()
    async with app.run_test() as pilot:
        if at_once:  # as the driver posts the keys of one read, back to back
            for key in keys:
                app.post_message(events.Key(key, CHARACTERS.get(key, key if len(key) == 1 else None)))
            await pilot.pause()
        else:
            await pilot.press(*keys)  # each key handled before the next
        return app.query_one(InOrderInput).value


@pytest.mark.parametrize("keys", SEQUENCES)
async def test_keys_of_one_read_act_as_if_typed_one_by_one(keys):
    assert await typed(keys, at_once=True) == await typed(keys, at_once=False)


async def test_backspace_then_a_digit_in_one_read():
    assert await typed(["backspace", "3"], at_once=True) == "ab3"


async def test_keys_typed_after_tab_in_one_read_land_in_the_next_field(app):
    from prunetui.tui.screens.finetune_dialog import FinetuneDialog

    from .conftest import wait_idle

    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.push_screen(FinetuneDialog())
        await pilot.pause()
        for key, character in [
            ("3", "3"),
            ("tab", "\t"),
            ("7", "7"),
            ("7", "7"),
            ("shift+tab", None),
            ("2", "2"),
        ]:
            app.post_message(events.Key(key, character))  # one read: no pause between them
        await pilot.pause()
        epochs, lr = (app.screen.query_one(f"#{name}", InOrderInput).value for name in ("epochs", "lr"))
        assert (epochs, lr) == ("2", "77")  # each field selects its text when focused: typing replaces it
