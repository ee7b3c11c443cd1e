"""The first frame comes before torch: the app draws its layout, then an opener (run in a thread) brings the
session and the panes fill; an opener's UserError ends the app with the CLI's `error:` line and exit 2."""

import subprocess
import sys
import threading
import time

import pytest
from textual.app import App
from textual.widgets import Footer

from prunetui.core.sensitivity import DEFAULT_SPARSITIES
from prunetui.errors import UserError
from prunetui.tui.app import PruneApp, run_app
from prunetui.tui.loading import LOADING, LoadingNote
from prunetui.tui.scan_curves import DEFAULT_GRID
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.status_line import StatusLine
from prunetui.workflow.opening import Opened

from .conftest import LAYERS, wait_idle, wait_until


def opener_of(session, release: threading.Event | None = None):
    def opener() -> Opened:
        if release is not None:
            assert release.wait(30), "the test never released the opener"
        return Opened(session, None, "tiny", None, ["a note from opening"])

    return opener


def loading_app(opener, tmp_path) -> PruneApp:
    app = PruneApp(opener=opener, model_spec="tiny-spec", workdir=tmp_path)
    app.animation_level = "none"
    return app


async def test_the_layout_is_drawn_before_the_opener_returns_then_filled(session, tmp_path):
    release = threading.Event()
    app = loading_app(opener_of(session, release), tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.workbench.session is None and not app.query(LayerTable)
        assert str(app.query_one(LoadingNote).render()) == f"tiny-spec: {LOADING}"
        assert app.query_one(StatusLine).waiting == f"tiny-spec  {LOADING}"
        assert app.query_one(Footer).is_mounted
        assert app.workbench.check_action("scan", ()) is None and app.workbench.check_action("quit", ())  # dimmed; q works
        await pilot.press("s", "p")  # nothing to act on yet: no error, nothing starts
        assert app.is_running and not app.workbench.busy
        release.set()
        await wait_until(pilot, lambda: app.workbench.session is not None and app.query(LayerTable))
        await wait_idle(pilot)
        table = app.query_one(LayerTable)
        assert [str(key.value) for key in table.rows] == LAYERS and app.focused is table
        assert not app.query(LoadingNote) and not app.query(".-waiting")
        assert app.workbench.session.dense_accuracy is not None and app.workbench.status.model_label == session.label
        assert app.workbench.check_action("scan", ()) is True
        await pilot.press("5")  # the keys drive the session now
        assert app.workbench.targets[LAYERS[0]] == pytest.approx(0.5)


async def test_q_quits_at_once_while_the_model_opens(session, tmp_path):
    release = threading.Event()
    app = loading_app(opener_of(session, release), tmp_path)
    try:
        async with app.run_test() as pilot:
            await pilot.pause()
            started = time.monotonic()
            await pilot.press("q")
            await wait_until(pilot, lambda: not app.is_running, timeout=5)
            assert time.monotonic() - started < 2
        assert app.return_code == 0
    finally:
        release.set()


def failing_opener() -> Opened:
    raise UserError("checkpoint not found: missing.pt")


async def test_an_opener_user_error_is_one_line_and_exit_2(tmp_path):
    app = loading_app(failing_opener, tmp_path)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.open_error is not None)
        assert str(app.query_one(LoadingNote).render()) == "error: checkpoint not found: missing.pt"
        await wait_until(pilot, lambda: not app.is_running, timeout=5)  # it ends by itself
    assert app.return_code == 2 and isinstance(app.open_error, UserError)


def test_run_app_raises_the_opener_error_for_the_cli_to_print(monkeypatch, capsys):
    """cli.main prints `error: ...` and returns 2 for it, as for any UserError."""
    from prunetui import cli

    monkeypatch.setattr(PruneApp, "run", lambda self: App.run(self, headless=True, size=(80, 24)))
    with pytest.raises(UserError, match="checkpoint not found"):
        run_app(failing_opener)
    monkeypatch.setattr(cli, "_check_terminal", lambda: None)
    monkeypatch.setattr(cli, "_open_quietly", lambda args: failing_opener())
    assert cli.main([]) == 2
    assert capsys.readouterr().err == "error: checkpoint not found: missing.pt\n"


def test_the_app_module_imports_no_torch():
    code = (
        "import sys, prunetui.tui.app, prunetui.tui.loading\n"
        "print(sorted(m for m in ('torch', 'numpy', 'plotext') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_grid_written_for_the_first_frame_is_the_engines():
    assert DEFAULT_GRID == DEFAULT_SPARSITIES
