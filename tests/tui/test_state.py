"""The workbench's state: actions a running job disables (check_action, the footer), and panes that follow
state they did not change themselves."""

import pytest

from prunetui.core.profile import Profile, save_profile
from prunetui.core.suggest import Suggestion
from prunetui.tui.job_runner import BUSY
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.weights_plot import WeightsPlot
from prunetui.tui.widgets.status_line import StatusLine

from .conftest import MODEL_LABEL, wait_idle, wait_until
from .test_jobs import start_finetune


def target_cell(app, layer_name: str) -> str:
    return str(app.query_one(LayerTable).get_cell(layer_name, "target")).strip()


def footer_enabled(app, key: str) -> bool:
    return app.screen.active_bindings[key].enabled


async def test_a_running_job_disables_target_edits_and_jobs_and_says_why(slow_app, monkeypatch):
    app = slow_app
    notes = []
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(message))
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)
        assert app.workbench.check_action("set_target", ()) is None and app.workbench.check_action("prune", ()) is None
        assert not footer_enabled(app, "p") and footer_enabled(app, "question_mark")
        before = dict(app.workbench.session.targets)
        await pilot.press("5", "plus", "enter")
        assert app.workbench.session.targets == before and app.workbench.targets == before
        assert not isinstance(app.screen, AskDialog)
        await app.workbench.run_from_palette("scan")
        assert notes == [BUSY] * 4 and app.workbench.job_title == "Finetune"
        await pilot.press("x")
        await wait_idle(pilot)
        assert footer_enabled(app, "p")
        await pilot.press("5")
        assert app.workbench.session.targets["conv1.weight"] == 0.5
        assert target_cell(app, "conv1.weight") == "0.50"


async def test_panes_follow_targets_locks_and_suggestions_they_did_not_set(app, tmp_path):
    save_profile(Profile("p1", {"conv1.weight": 0.6}, model=MODEL_LABEL), tmp_path / "profiles" / "p1.toml")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await pilot.press("o", "enter")  # opened by a dialog: nothing told the table or the header
        await pilot.pause()
        assert app.workbench.targets == app.workbench.session.targets and app.workbench.session.targets["conv1.weight"] == 0.6
        assert target_cell(app, "conv1.weight") == "0.60"
        assert "target 0.60" in app.query_one(WeightsPlot).render().plain
        status = app.query_one(StatusLine).status
        assert status.projected_mib == pytest.approx(app.workbench.session.projected_size())

        app.workbench.locked_layers = frozenset({"fc.weight"})
        app.workbench.pending_suggestion = Suggestion({"conv2.weight": 0.5}, predicted_accuracy=70.0, size_mib=0.01)
        assert target_cell(app, "fc.weight") == "0.00 L"
        assert target_cell(app, "conv2.weight") == "0.00→0.50"
        assert app.query_one(StatusLine).status.suggested_mib == 0.01
        assert app.workbench.check_action("prune", ()) is False and "p" not in app.screen.active_bindings  # hidden
        app.workbench.pending_suggestion = None
        assert target_cell(app, "conv2.weight") == "0.00"
        assert app.query_one(StatusLine).status.suggested_mib is None


async def test_targets_stay_editable_beside_a_scan_and_survive_its_failure(app):
    """A scan reads the weights, not the targets: a user plans the next run while it runs."""
    import threading

    release = threading.Event()

    def failing_scan(ctx) -> None:
        release.wait(10)
        raise RuntimeError("disk full")

    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.jobs.start("Scan", failing_scan, changes_model=False)
        await pilot.press("5")
        assert app.workbench.session.targets["conv1.weight"] == 0.5 and target_cell(app, "conv1.weight") == "0.50"
        assert app.workbench.check_action("prune", ()) is None  # jobs still wait
        release.set()
        await wait_idle(pilot)
        assert app.workbench.session.targets["conv1.weight"] == 0.5  # the failed job did not put them back
