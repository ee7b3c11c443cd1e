"""Terminal sizes, resizing during a job, several GPUs, and failures of separate processes."""

import asyncio
import re
import tempfile
from pathlib import Path

import torch
from textual.app import App
from textual.widgets import RichLog

from prunetui.core.events import EpochEnd
from prunetui.core.finetune import FinetuneResult
from prunetui.core.session import Session
from prunetui.errors import JobFailed
from prunetui.tui.app import PruneApp, run_app
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.finetune_dialog import FinetuneDialog
from prunetui.tui.widgets.size_warning import SizeWarning
from prunetui.tui.workbench import WorkbenchScreen
from prunetui.workflow.opening import Opened

from .conftest import wait_idle, wait_until
from .test_jobs import log_lines, start_finetune
from .test_layout import fully_visible

PANES = ("StatusLine", "LayerTable", "#plots", "JobLog", "Footer")


async def test_a_terminal_too_small_shows_a_message_until_it_is_large_enough(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        warning = app.query_one(SizeWarning)
        assert not warning.display
        for width, height in [(40, 12), (59, 30), (100, 15)]:
            await pilot.resize_terminal(width, height)
            await pilot.pause()
            assert warning.display and warning.region.width == width
            text = str(warning.render())
            assert f"terminal too small: need at least 60x16, have {width}x{height}" in text
            assert not app.query_one("#panes").display
        await pilot.resize_terminal(60, 16)
        await pilot.pause()
        assert not warning.display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        for selector in PANES:
            assert fully_visible(app, selector), selector


async def test_resizing_while_a_job_runs_keeps_the_job_and_the_log(slow_app):
    app = slow_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)
        written = list(log_lines(app))
        for width, height in [(40, 12), (120, 40), (70, 20), (80, 24)]:
            await pilot.resize_terminal(width, height)
            await pilot.pause(0.05)
        epochs = len(app.workbench.epochs)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= epochs + 1)  # still training
        assert app.workbench.busy and app.workbench.job_title == "Finetune"
        assert log_lines(app)[: len(written)] == written
        assert len(app.query_one(RichLog).lines) >= len(log_lines(app))
        await pilot.press("x")
        await wait_idle(pilot)
        assert any("Finetune cancelled after" in line for line in log_lines(app))


async def test_several_gpus_offer_a_process_count_and_process_failures_are_shown(app, monkeypatch):
    calls = []

    def finetune(self, recipe, report=None, cancel=None):
        calls.append((recipe.finetune.epochs, recipe.processes.nproc))
        if len(calls) > 1:
            raise JobFailed("2 processes failed:\n  rank 0: exit code 1\n  rank 1: RuntimeError: boom")
        return FinetuneResult([EpochEnd(1, 80.0, 80.0, 0.1)], best_accuracy=80.0, best_epoch=1)

    monkeypatch.setattr(Session, "finetune", finetune)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("f")  # four GPUs, but the model is on the CPU
        assert isinstance(app.screen, FinetuneDialog) and not app.screen.query("#nproc")
        await pilot.press("escape")
        monkeypatch.setattr(type(app.workbench.session), "device", property(lambda session: torch.device("cuda")))
        await pilot.press("f")
        dialog = app.screen
        assert dialog.query_one("#nproc", ParsedInput).value == "1"
        assert "Processes (1-4, one per GPU)" in [str(label.render()) for label in dialog.query("Label")]
        dialog.query_one("#epochs", ParsedInput).value = "1"
        dialog.query_one("#nproc", ParsedInput).value = "5"
        await pilot.press("enter")
        assert app.screen is dialog
        assert "between 1 and 4" in str(dialog.query_one(".reason").render())
        dialog.query_one("#nproc", ParsedInput).value = "2"
        await pilot.press("enter")
        await wait_idle(pilot)
        assert calls == [(1, 2)]
        assert "1 epoch, lr 0.01, 0 layers masked (magnitude), 2 processes" in log_lines(app)
        notes = []
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(message))
        await pilot.press("f", "enter")
        await wait_idle(pilot)
        failure = "Finetune failed: 2 processes failed:\n  rank 0: exit code 1\n  rank 1: RuntimeError: boom"
        assert log_lines(app)[-1] == failure and notes == [failure]
        assert app.is_running and not app.workbench.busy


def test_an_error_in_a_handler_is_one_line_naming_a_crash_log(session, tmp_path, monkeypatch, capsys):
    """As the CLI: no Rich traceback on the terminal, the traceback in prunetui-crash-*.log, exit 1."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken_help(self) -> None:
        raise RuntimeError("help is broken")

    async def press_help(pilot) -> None:
        for _ in range(200):  # the session arrives from the opener's thread
            if pilot.app.workbench.session is not None:
                break
            await asyncio.sleep(0.05)
        await pilot.press("question_mark")
        for _ in range(200):  # Textual awaits this coroutine before run() returns
            if pilot.app.crash_error is not None:
                return
            await asyncio.sleep(0.05)
        pilot.app.exit()  # the action did not raise

    monkeypatch.setattr(WorkbenchScreen, "action_help", broken_help)
    monkeypatch.setattr(
        PruneApp, "run", lambda self: App.run(self, headless=True, size=(100, 30), auto_pilot=press_help)
    )
    assert run_app(lambda: Opened(session, None, "tiny", None, [])) == 1
    captured = capsys.readouterr()
    match = re.fullmatch(
        r"error: internal error \(RuntimeError: help is broken\); full traceback in (\S+)\n", captured.err
    )
    assert match, captured.err
    log = Path(match[1])
    assert log.parent == tmp_path and log.name.startswith("prunetui-crash-") and log.suffix == ".log"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken_help" in text
    assert "Traceback" not in captured.out and "╭" not in captured.out + captured.err
