"""Dialogs at 80x24: every line of text wraps within the dialog, none is cut at its right border."""

import pytest
from textual.geometry import Region
from textual.widgets import Label

from prunetui.tui.scan_curves import Tolerance
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.choice_dialog import ChoiceDialog
from prunetui.tui.screens.confirm_dialog import ConfirmDialog
from prunetui.tui.screens.finetune_dialog import FinetuneDialog
from prunetui.tui.screens.open_profile_dialog import OpenProfileDialog
from prunetui.tui.screens.run_note_dialog import RunNoteDialog
from prunetui.tui.screens.scan_settings_dialog import ScanSettings, ScanSettingsDialog

from .conftest import wait_idle

LONG = "A question long enough to need two lines at 80 columns, so that its end shows only if it wraps (end)."


def shown_text(widget) -> str:
    """The text the widget draws, its lines joined by spaces."""
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return " ".join(" ".join(strip.text.split()) for strip in lines)


def assert_labels_fit(screen) -> None:
    dialog = screen.query_one(".dialog")
    for label in dialog.query(Label):
        assert dialog.content_region.contains_region(label.region), str(label.render())
        assert shown_text(label) == " ".join(str(label.render()).split()), str(label.render())


async def test_the_reset_question_shows_whole_at_80x24(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("j", "8", "p")
        await wait_idle(pilot)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        prompt = app.screen.query_one(".dialog-prompt", Label)
        assert shown_text(prompt).endswith("unless exported (w).")
        assert_labels_fit(app.screen)


DIALOGS = {
    "confirm": lambda: ConfirmDialog(LONG),
    "ask": lambda: AskDialog("Suggest", LONG, str),
    "choice": lambda: ChoiceDialog("Targets changed", LONG, [("p", "Prune first"), ("c", "Current")]),
    "finetune": lambda: FinetuneDialog(note="Not pruned yet: the targets are applied first (as p does)."),
    "open": lambda: OpenProfileDialog([], lambda text: None),
    "note": lambda: RunNoteDialog("run 3 " + LONG, "run", ""),
    "scan": lambda: ScanSettingsDialog(ScanSettings((0.5, 0.9), Tolerance())),
}


@pytest.mark.parametrize("kind", DIALOGS)
async def test_every_dialog_wraps_its_text_at_80x24(app, kind):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.push_screen(DIALOGS[kind]())
        await pilot.pause()
        for label in app.screen.query(".reason"):  # a refusal can be long too
            label.update(LONG)
        await pilot.pause()
        assert_labels_fit(app.screen)


@pytest.mark.parametrize(("size", "compact"), [((80, 24), True), ((120, 40), False)])
async def test_the_finetune_dialog_with_a_process_count_fits_the_terminal(app, size, compact):
    async with app.run_test(size=size) as pilot:
        await wait_idle(pilot)
        app.push_screen(
            FinetuneDialog(note="Not pruned yet: the targets are applied first (as p does).", gpus=4)
        )
        await pilot.pause()
        dialog = app.screen.query_one(".dialog")
        keys = app.screen.query_one(".dialog-keys", Label)
        assert dialog.content_region.contains_region(keys.region)  # the last line shows: nothing cut below
        assert app.screen.query_one("#nproc").compact is compact
        assert_labels_fit(app.screen)
