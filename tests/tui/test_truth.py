"""The workbench tells the truth about the model it has (issue 25): a scan shown is of a model state, and
says so once the model changed; a reset finds the scan of the model as opened again."""

from rich.text import Text

from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.sensitivity_view import SensitivityView

from .conftest import wait_idle, wait_until
from .test_jobs import start_finetune


def sensitivity_header(app) -> str:
    return str(app.query_one(SensitivityView).query_one("#sensitivity-header").render())


def safe_style(app, layer_name: str) -> str:
    cell = app.query_one(LayerTable).get_cell(layer_name, "safe")
    return str(cell.style) if isinstance(cell, Text) else ""


async def test_a_scan_of_the_model_before_is_marked_and_a_reset_finds_the_dense_scan(recording_app):
    app = recording_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        assert "before the model changed" not in sensitivity_header(app)
        assert safe_style(app, "conv1.weight") == "green"
        app.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("p")
        await wait_idle(pilot)
        await wait_until(pilot, lambda: "scan of the model as opened" in sensitivity_header(app))
        assert "s scans it now" in sensitivity_header(app) and safe_style(app, "conv1.weight") == "dim"
        await pilot.press("r", "y")  # back to the weights as opened: their scan is in the cache
        await wait_idle(pilot)
        await wait_until(pilot, lambda: "before the model changed" not in sensitivity_header(app))
        assert safe_style(app, "conv1.weight") == "green" and app.workbench.curves.of_label == "the model as opened"


async def test_a_scan_after_pruning_is_of_that_run(recording_app):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("p")
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        run = app.workbench.session.current_run
        assert app.workbench.curves.of_label == f"run {run.name}" and not app.workbench.curves.is_stale(app.workbench.stats.version)


async def test_keys_typed_during_a_job_wait_for_it_instead_of_acting_on_the_table(slow_app):
    """During a finetune, `f`, backspace, `3`, enter: a 3-epoch finetune once the first has ended, and no
    target changed by the `3` (digit keys set targets on the main screen)."""
    app = slow_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.5)
        await start_finetune(pilot, epochs=2)
        assert app.workbench.busy
        await pilot.press("f", "backspace", "3", "enter")

        def second_finetune_ended() -> bool:
            run = app.workbench.session.current_run
            return run is not None and run.epochs_planned == 3 and not app.workbench.busy

        await wait_until(pilot, second_finetune_ended, timeout=60)
        run = app.workbench.session.current_run
        assert run.kind == "finetune" and run.epochs_planned == 3 and len(run.epochs) == 3
        assert app.workbench.session.targets["conv1.weight"] == 0.0 and app.workbench.session.targets["conv2.weight"] == 0.5


async def test_the_recovery_options_on_are_in_the_header(recording_app):
    from prunetui.tui.screens.fields.parsed_input import ParsedInput
    from prunetui.tui.screens.finetune_dialog import FinetuneDialog
    from prunetui.tui.widgets.status_line import StatusLine

    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        header = lambda: str(app.query_one(StatusLine).render())  # noqa: E731
        assert "+BN" not in header()
        await pilot.press("B")
        await wait_until(pilot, lambda: "+BN" in header())
        app.workbench.set_target("conv2.weight", 0.5)
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, FinetuneDialog)
        dialog.query_one("#epochs", ParsedInput).value = "1"
        dialog.query_one("#distill", ParsedInput).value = "y"
        await pilot.press("enter")
        await wait_idle(pilot)
        await wait_until(pilot, lambda: "+BN +KD" in header())
        assert app.workbench.session.current_run.kind == "finetune"  # no BatchNorm: said, and the run goes on
        await pilot.press("B")
        await wait_until(pilot, lambda: "+BN" not in header() and "+KD" in header())


async def test_an_export_reopens_as_what_it_is(capsys, tmp_path, monkeypatch):
    """Its targets (what its weights were pruned to) come back, in `info --json` and the table; the header
    calls its accuracy `opened`, not `dense`."""
    from conftest import run_json

    from prunetui.tui.widgets.status_line import StatusLine
    from prunetui.workflow.opening import Request, open_session

    from .conftest import make_app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.toml").write_text('name = "p"\n[sparsity]\n"backbone.conv3.weight" = 0.7\n')
    run_json(capsys, "prune", "--profile", "p.toml", "--out", "x.pt")
    info, _ = run_json(capsys, "info", "--checkpoint", "x.pt")
    targets = {layer["name"]: layer["target"] for layer in info["layers"]}
    assert targets["backbone.conv3.weight"] == 0.7 and targets["backbone.conv0.weight"] == 0.0
    app = make_app(open_session(Request(checkpoint="x.pt"), tmp_path).session, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        header = str(app.query_one(StatusLine).render())
        assert "opened" in header and "dense" not in header
        assert app.workbench.targets["backbone.conv3.weight"] == 0.7


def test_a_drop_under_one_image_says_so_and_the_settings_offer_a_point():
    from prunetui.tui.scan_curves import ScanCurves, Tolerance
    from prunetui.tui.widgets.plots.sensitivity_view import header_text

    curves = ScanCurves(99.78, {"conv1.weight": [(0.4, 99.78)]}, (0.4,), images=450)  # the demo's digits
    assert curves.drop_below_one_image(Tolerance()) and not curves.drop_below_one_image(Tolerance(1.0))
    for width in (80, 120):
        text = header_text(curves, "conv1.weight", Tolerance(), False, width).plain
        assert "under one image" in text and "conv1" in text and len(text) <= width
    assert "under one image" not in header_text(curves, None, Tolerance(1.0), False, 120).plain


async def test_s_offers_one_point_when_the_labs_drop_is_under_one_image(recording_app):
    from prunetui.tui.scan_curves import ScanCurves
    from prunetui.tui.screens.scan_settings_dialog import ScanSettingsDialog

    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.curves = ScanCurves(99.9, {"conv1.weight": [(0.4, 99.9)]}, (0.4,), images=64)
        await pilot.press("S")
        dialog = app.screen
        assert isinstance(dialog, ScanSettingsDialog) and dialog.current.tolerance.points == 1.0
        note = str(dialog.query_one(".dialog-note").render())
        assert "1 offered" in note and "under one image" in note  # said, not silently switched


async def test_the_finetune_tab_says_when_the_model_has_changed_since(slow_app):
    """A finetune's curve, then a reset: the tab names it the finetune of the model before."""
    from prunetui.tui.widgets.plots.finetune_plot import FinetunePlot

    app = slow_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.5)
        await start_finetune(pilot, epochs=1)
        await wait_idle(pilot)
        plot = app.query_one(FinetunePlot)
        assert plot._titles[0].startswith("best ")
        await pilot.press("r", "y")
        await wait_idle(pilot)
        assert plot._titles[0].startswith("finetune of the model before")
