"""One suggestion (issue 25): the workbench's `a 25%` and `prunetui suggest --budget 25%` give the same
targets for the same model and data, and the header shows the suggestion's measured accuracy."""

import pytest
from conftest import run_json

from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.widgets.status_line import StatusLine
from prunetui.workflow.opening import Request, open_session

from .conftest import make_app, wait_idle, wait_until


async def test_the_workbench_and_the_command_line_suggest_the_same(capsys, tmp_path, monkeypatch, digits160):
    monkeypatch.chdir(tmp_path)
    cli, _ = run_json(capsys, "suggest", "--data", digits160, "--budget", "25%")
    session = open_session(Request(data=digits160), tmp_path / "app").session
    app = make_app(session, tmp_path / "app")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        await pilot.press("a")
        assert isinstance(app.screen, AskDialog)
        await pilot.press("enter")  # the dialog's default goal: 25%
        await wait_until(pilot, lambda: app.workbench.pending_suggestion is not None, timeout=120)
        suggestion = app.workbench.pending_suggestion
        assert suggestion.targets == pytest.approx(cli["targets"])
        assert suggestion.measured_accuracy == pytest.approx(cli["accuracy_before"])
        header = str(app.query_one(StatusLine).render())
        assert f"measured {suggestion.measured_accuracy:.2f}%" in header and "predicted" not in header
