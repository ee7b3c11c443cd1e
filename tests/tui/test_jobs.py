"""Jobs: dense evaluation, scan, prune, finetune, reset; cancel, failures, one job at a time."""

import logging
import re
import warnings

import pytest
import torch

from prunetui.errors import UserError
from prunetui.tui.log_handler import LogPaneHandler
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.finetune_dialog import FinetuneDialog
from prunetui.tui.widgets.job_log import JobLog
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.finetune_plot import FinetunePlot
from prunetui.tui.widgets.status_line import StatusLine

from .conftest import LAYERS, make_app, make_session, wait_idle, wait_until

SIZE_LINE = re.compile(r"^Sparse model has size=\d+\.\d\d MiB = \d+\.\d\d% of dense model size$")
BEFORE_LINE = re.compile(r"^Sparse model has accuracy=\d+\.\d\d% before finetuning$")
AFTER_LINE = re.compile(r"^Sparse model has accuracy=\d+\.\d\d% after finetuning$")
FINISHED_LINE = re.compile(r"^(Prune|Finetune) finished in (\d+ min )?\d+ s$")
EPOCH_LINE = re.compile(r"^    Epoch (\d+) Accuracy \d+\.\d\d% / Best Accuracy: \d+\.\d\d%$")


def log_lines(app) -> list[str]:
    return app.query_one(JobLog).texts


def pruned_weights_are_zero(session) -> bool:
    params = dict(session.model.named_parameters())
    return all(bool((params[name][~mask] == 0).all()) for name, mask in session.state.masks.items())


async def start_finetune(pilot, epochs: int) -> None:
    await pilot.press("f")
    assert isinstance(pilot.app.screen, FinetuneDialog)
    pilot.app.screen.query_one("#epochs", ParsedInput).value = str(epochs)
    await pilot.press("enter")


async def test_dense_evaluation_at_start_fills_header_and_table(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        session = app.workbench.session
        assert session.dense_accuracy is not None
        status = app.query_one(StatusLine).status
        assert status.dense_accuracy == status.accuracy == session.dense_accuracy
        assert f"Dense model has accuracy={session.dense_accuracy:.2f}%" in log_lines(app)
        assert str(app.query_one(LayerTable).get_cell("conv3.weight", "params")).strip() == "2,304"


async def test_scan_draws_every_curve_and_the_safe_hints(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        curves = app.workbench.curves
        assert curves.base_accuracy == app.workbench.session.dense_accuracy
        assert set(curves.points) == set(LAYERS)
        for points in curves.points.values():
            assert [s for s, _ in points] == [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        table = app.query_one(LayerTable)
        for layer_name in LAYERS:
            hint = str(table.get_cell(layer_name, "safe")).strip()
            assert hint == f"{curves.safe_sparsity(layer_name):.2f}"
        assert re.fullmatch(r"Scan finished in \d+ s", log_lines(app)[-1])
        assert app.query_one("#plots").active == "sensitivity-tab"
        weights = {k: v.clone() for k, v in app.workbench.session.model.state_dict().items()}
        assert all(torch.equal(weights[k], v) for k, v in app.workbench.session.state.opened.items())  # scan restores


async def test_prune_applies_targets_and_reports_size_and_accuracy(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.8)
        app.workbench.set_target("conv3.weight", 0.5)
        await pilot.press("p")
        await wait_idle(pilot)
        session = app.workbench.session
        assert set(session.state.masks) == {"conv2.weight", "conv3.weight"}
        assert pruned_weights_are_zero(session)
        zeros = {info.name: info.zero_fraction for info in app.workbench.stats.layers}
        assert zeros["conv2.weight"] == pytest.approx(0.8, abs=0.01)
        assert zeros["conv3.weight"] == pytest.approx(0.5, abs=0.01)
        assert str(app.query_one(LayerTable).get_cell("conv2.weight", "zeros")).strip() == "80.0%"
        status = app.query_one(StatusLine).status
        assert status.size_mib == pytest.approx(session.current_size())
        assert status.size_mib < session.dense_size
        assert status.accuracy == session.accuracy is not None
        assert SIZE_LINE.match(log_lines(app)[-3]) and BEFORE_LINE.match(log_lines(app)[-2])
        assert FINISHED_LINE.match(log_lines(app)[-1]).group(1) == "Prune"
        size = session.current_size()
        assert f"{size:.2f} MiB = {session.percent(size):.2f}%" in log_lines(app)[-3]


async def test_finetune_logs_every_epoch_and_keeps_the_best(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=3)
        await wait_idle(pilot)
        lines = log_lines(app)
        epoch_lines = [line for line in lines if EPOCH_LINE.match(line)]
        assert [EPOCH_LINE.match(line).group(1) for line in epoch_lines] == ["1", "2", "3"]
        assert epoch_lines == [f"    {e.line()}" for e in app.workbench.epochs]
        best = max(e.accuracy for e in app.workbench.epochs)
        assert app.workbench.session.accuracy == best
        assert SIZE_LINE.match(lines[-3]) and AFTER_LINE.match(lines[-2])
        assert FINISHED_LINE.match(lines[-1]).group(1) == "Finetune"
        assert f"{best:.2f}%" in lines[-2]
        assert pruned_weights_are_zero(app.workbench.session)  # the masks held while training
        assert app.query_one("#plots").active == "finetune-tab"
        best_epoch = next(e.epoch for e in app.workbench.epochs if e.accuracy == best)
        assert f"best {best:.2f}% at epoch {best_epoch}" in app.query_one(FinetunePlot).render().plain


async def test_finetune_before_pruning_prunes_first(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("j", "7", "f")
        assert "Not pruned yet" in str(app.screen.query_one(".dialog-note").render())
        app.screen.query_one("#epochs", ParsedInput).value = "1"
        await pilot.press("enter")
        await wait_idle(pilot)
        assert set(app.workbench.session.state.masks) == {"conv2.weight"}
        assert any(BEFORE_LINE.match(line) for line in log_lines(app))
        assert len(app.workbench.epochs) == 1


async def test_a_finetune_that_prunes_first_shows_the_pruned_model_while_it_trains(slow_app):
    app = slow_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        dense = app.workbench.stats.size_mib
        app.workbench.set_target("conv3.weight", 0.9)
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)  # still training
        assert app.workbench.busy and app.workbench.stats.size_mib < dense  # the header's size is of the pruned model
        zeros = {info.name: info.zero_fraction for info in app.workbench.stats.layers}
        assert zeros["conv3.weight"] > 0.85  # and the table's Zeros column
        await pilot.press("x")
        await wait_idle(pilot)


async def test_finetune_dialog_validates_its_fields(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("f")
        dialog = app.screen
        assert dialog.query_one("#epochs", ParsedInput).value == "5"
        assert dialog.query_one("#lr", ParsedInput).value == "0.01"
        assert not dialog.query("#nproc")  # no GPUs here: one process
        dialog.query_one("#lr", ParsedInput).value = "fast"
        await pilot.press("enter")
        assert app.screen is dialog
        assert "learning rate must be a number" in str(dialog.query_one(".reason").render())
        await pilot.press("escape")
        assert not app.workbench.busy and app.workbench.epochs == []


async def test_cancel_mid_finetune_keeps_masks_and_clears_busy(slow_app):
    app = slow_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv3.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)
        await pilot.press("x")
        await wait_idle(pilot)
        assert not app.workbench.busy
        assert 1 <= len(app.workbench.epochs) < 1000
        assert any("Finetune cancelled after" in line for line in log_lines(app))
        assert set(app.workbench.session.state.masks) == {"conv3.weight"}
        assert pruned_weights_are_zero(app.workbench.session)
        await pilot.press("s")  # a new job runs: nothing was left running
        await wait_idle(pilot)
        assert log_lines(app)[-1].startswith("Scan finished in")


async def test_a_second_job_while_busy_waits_and_cancel_drops_it(slow_app, monkeypatch):
    app = slow_app
    notes = []
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(message))
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)
        await pilot.press("p", "s", "r", "w")
        assert notes == ["p waits for Finetune to end (x cancels it)"]  # the rest wait with it
        assert app.workbench.job_title == "Finetune" and app.workbench.type_ahead.held
        await pilot.press("escape")
        await wait_idle(pilot)
        assert any("Finetune cancelled" in line for line in log_lines(app))
        assert "Dropped the keys typed for after Finetune: p s r w" in log_lines(app)
        run = app.workbench.session.current_run  # the cancelled finetune: no prune ran after it
        assert not app.workbench.type_ahead.held and run.kind == "finetune" and run.status == "cancelled"


OUT_OF_MEMORY = torch.OutOfMemoryError(
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "3.06 MiB is free. Including non-PyTorch memory, this process has 79.18 GiB memory in use."
)
OUT_OF_MEMORY_SHOWN = (
    "failed: out of GPU memory: CUDA out of memory. Tried to allocate 2.00 GiB, "
    "try a smaller batch or --device cpu"
)


@pytest.mark.parametrize(
    ("key", "method", "error", "shown"),
    [
        ("p", "prune", OUT_OF_MEMORY, f"Prune {OUT_OF_MEMORY_SHOWN}"),
        ("p", "prune", UserError("disk full, free some space"), "Prune failed: disk full, free some space"),
        ("f", "finetune", OUT_OF_MEMORY, f"Finetune {OUT_OF_MEMORY_SHOWN}"),
        ("s", "scan", OUT_OF_MEMORY, f"Scan {OUT_OF_MEMORY_SHOWN}"),
    ],
)
async def test_a_failing_job_leaves_the_model_as_it_was(app, monkeypatch, key, method, error, shown):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.5)
        await pilot.press("p")
        await wait_idle(pilot)
        session = app.workbench.session
        weights = {k: v.clone() for k, v in session.model.state_dict().items()}
        masks = {k: v.clone() for k, v in session.state.masks.items()}

        def half_done_then_fail(*args, **kwargs):
            with torch.no_grad():
                session.model.conv3.weight.zero_()
            session.state.masks = {}
            raise error

        monkeypatch.setattr(session, method, half_done_then_fail)
        if key == "f":
            await start_finetune(pilot, epochs=1)
        else:
            await pilot.press(key)
        await wait_idle(pilot)
        after = session.model.state_dict()
        assert all(torch.equal(weights[k], after[k]) for k in weights)
        assert session.state.masks.keys() == masks.keys()
        assert all(torch.equal(masks[k], session.state.masks[k]) for k in masks)
        assert shown in log_lines(app)
        await pilot.press("j", "6")  # still alive and responsive
        assert session.targets["conv2.weight"] == 0.6


async def test_reset_goes_back_to_the_dense_weights(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv1.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        assert app.workbench.session.state.masks
        await pilot.press("r", "n")  # pruned weights: it asks first
        assert app.workbench.session.state.masks
        await pilot.press("r", "y")
        await wait_idle(pilot)
        state = app.workbench.session.model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in app.workbench.session.state.opened.items())
        assert app.workbench.session.state.masks == {}
        assert app.query_one(StatusLine).status.size_mib == pytest.approx(app.workbench.session.dense_size)
        assert app.workbench.session.targets["conv1.weight"] == 0.9  # targets are kept


async def test_without_data_accuracy_is_na_and_scan_finetune_say_why(trained_state, tmp_path):
    app = make_app(make_session(trained_state, with_data=False), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        assert "dense n/a" in app.query_one(StatusLine).render().plain
        await pilot.press("s", "f")
        assert "Scan needs data: start prunetui with --data" in log_lines(app)
        assert "Finetune needs data: start prunetui with --data" in log_lines(app)
        assert not app.workbench.busy and not isinstance(app.screen, FinetuneDialog)
        app.workbench.set_target("conv1.weight", 0.9)
        await pilot.press("p")  # pruning needs no data: sizes only
        await wait_idle(pilot)
        assert app.workbench.session.state.masks and SIZE_LINE.match(log_lines(app)[-2])
        assert FINISHED_LINE.match(log_lines(app)[-1])


async def test_quit_while_a_job_runs_asks_then_cancels_and_exits(slow_app):
    app = slow_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv1.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)
        await pilot.press("q")
        await pilot.press("n")  # declined: the job goes on
        assert app.workbench.busy and app.is_running
        await pilot.press("q", "y")
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 0
    assert not app.workbench.busy
    assert len(app.workbench.epochs) < 1000
    assert pruned_weights_are_zero(app.workbench.session)


async def test_quit_when_idle_exits_at_once(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_warnings_and_log_records_go_to_the_log_pane(app, monkeypatch):
    real_prune = app.workbench.session.prune

    def prune_with_a_warning(targets=None, run_name=None, **options):
        warnings.warn("weights look odd", UserWarning, stacklevel=1)
        logging.getLogger("somelib").warning("native library says hi")
        real_prune(targets, run_name, **options)

    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        monkeypatch.setattr(app.workbench.session, "prune", prune_with_a_warning)
        await pilot.press("p")
        await wait_idle(pilot)
        lines = log_lines(app)
        assert any(line.startswith("warning: ") and "UserWarning: weights look odd" in line for line in lines)
        assert "warning: native library says hi" in lines
    assert not any(isinstance(h, LogPaneHandler) for h in logging.getLogger().handlers)  # put back


async def test_finetune_tab_says_a_finetune_runs_before_its_first_epoch(slow_app, monkeypatch):
    app = slow_app
    titles = []
    original = FinetunePlot.set_title
    monkeypatch.setattr(FinetunePlot, "set_title", lambda self, *a: (titles.append(a[0]), original(self, *a)))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        app.workbench.show_plot("finetune-tab")
        await pilot.pause()
        assert titles[-1].startswith("no finetune run yet")
        await start_finetune(pilot, epochs=2)
        await wait_idle(pilot)
        started = titles.index("finetuning: accuracy after each epoch")
        assert all(not t.startswith("no finetune") for t in titles[started:])
        assert titles[-1].startswith("best ")


async def test_the_finetune_dialog_offers_the_last_finetunes_values(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("f")
        assert app.screen.query_one("#epochs", ParsedInput).value == "5"  # PRODUCT.md's default
        app.screen.query_one("#lr", ParsedInput).value = "0.02"
        app.screen.query_one("#epochs", ParsedInput).value = "2"
        await pilot.press("enter")
        await wait_idle(pilot)
        await pilot.press("f")
        fields = {name: app.screen.query_one(f"#{name}", ParsedInput).value for name in ("epochs", "lr")}
        assert fields == {"epochs": "2", "lr": "0.02"}
        await pilot.press("escape")
        await pilot.press("f")  # a cancelled dialog changes nothing
        assert app.screen.query_one("#epochs", ParsedInput).value == "2"
