"""The Sensitivity tab: one definition of safe (the tolerated drop) shown in its header and used by the
Safe column, the numbers and the red line; the numbers view (T); the scan settings (S); the Safe column
after a method switch."""

import pytest

from prunetui.core.sensitivity import lower_bound
from prunetui.tui.scan_curves import ScanCurves, Tolerance, parse_tolerance
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.scan_settings_dialog import ScanSettingsDialog
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.sensitivity_grid import SensitivityGrid
from prunetui.tui.widgets.plots.sensitivity_plot import SensitivityPlot

from .conftest import LAYERS, wait_idle, wait_until


def safe_cells(app) -> dict[str, str]:
    table = app.query_one(LayerTable)
    return {name: str(table.get_cell(name, "safe")).strip() for name in LAYERS}


def header(app) -> str:
    return str(app.query_one("#sensitivity-header").render())


def test_one_tolerance_gives_the_floor_and_safe():
    assert Tolerance().floor(93.0) == pytest.approx(lower_bound(93.0))  # the lab's rule by default
    assert Tolerance(1.0).floor(93.0) == 92.0
    assert parse_tolerance("lab") == Tolerance() and parse_tolerance("0.5") == Tolerance(0.5)
    with pytest.raises(ValueError, match="points"):
        parse_tolerance("lots")


async def test_tolerated_drop_drives_safe_the_numbers_and_the_header(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        base = app.workbench.curves.base_accuracy
        assert f"floor {lower_bound(base):.2f}%" in header(app)  # the lab's rule by default
        lab_safe = safe_cells(app)
        await pilot.press("S")
        assert isinstance(app.screen, ScanSettingsDialog)
        app.screen.query_one("#drop", ParsedInput).value = "0"
        await pilot.press("enter")
        assert app.workbench.tolerance == Tolerance(0.0)
        assert f"tolerated drop 0.00 pt → floor {base:.2f}%" in header(app)
        strict = safe_cells(app)
        assert strict == {n: f"{app.workbench.curves.safe_sparsity(n, Tolerance(0.0)):.2f}" for n in LAYERS}
        assert strict != lab_safe and all(float(strict[n]) <= float(lab_safe[n]) for n in LAYERS)
        await pilot.press("T")  # the numbers, cells below the floor in red
        grid = app.query_one(SensitivityGrid)
        assert grid.display and not app.query_one(SensitivityPlot).display
        assert grid.row_count == len(LAYERS)
        below = [(n, s) for n, points in app.workbench.curves.points.items() for s, a in points if a < base - 1e-9]
        assert below
        for layer_name, s in below:
            assert "red" in str(grid.get_cell(layer_name, f"{s:g}").style)
        await pilot.press("T")
        assert app.query_one(SensitivityPlot).display and not grid.display


async def test_scan_grid_is_chosen_in_the_app(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("S")
        dialog = app.screen
        dialog.query_one("#grid", ParsedInput).value = "0.5:1.0:0.25"
        await pilot.press("enter")
        assert app.workbench.scan_grid == (0.5, 0.75)
        await pilot.press("s")
        await wait_idle(pilot)
        assert all([s for s, _ in points] == [0.5, 0.75] for points in app.workbench.curves.points.values())
        await pilot.press("S")
        app.screen.query_one("#grid", ParsedInput).value = "2"
        await pilot.press("enter")
        assert "[0, 1]" in str(app.screen.query_one(".reason").render())  # stays open with the reason


async def test_method_switch_keeps_safe_when_a_stored_scan_exists(recording_app):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        magnitude_safe = safe_cells(app)
        await pilot.press("M")  # taylor: no scan stored by it yet
        await wait_until(pilot, lambda: app.workbench.method == "taylor")
        await pilot.pause(0.2)
        assert "safe" not in [c.key.value for c in app.query_one(LayerTable).ordered_columns]
        await pilot.press("M")  # channel
        await wait_until(pilot, lambda: app.workbench.method == "channel")
        await pilot.press("M")  # magnitude again: its stored scan comes back, and the Safe column
        await wait_until(pilot, lambda: app.workbench.method == "magnitude" and app.workbench.curves.base_accuracy is not None)
        await pilot.pause()
        assert safe_cells(app) == magnitude_safe


def test_a_layer_scanned_part_way_is_partial():
    curves = ScanCurves(90.0, {"a": [(0.4, 90.0), (0.5, 89.0)], "b": [(0.4, 90.0)]})
    assert curves.partial_layers() == {"b"}
    curves.add("b", 0.5, 80.0)
    assert curves.partial_layers() == set()
    first = ScanCurves(90.0, {"a": [(0.4, 90.0)]}, grid=(0.4, 0.5, 0.6))  # the first layer, cancelled
    assert first.partial_layers() == {"a"} and first.safe_labels(Tolerance(1.0)) == {"a": "0.40+"}


def test_safe_labels_say_what_was_measured():
    grid = (0.3, 0.305, 0.31, 0.315, 0.32)
    curves = ScanCurves(
        99.78,
        {
            "fine": list(zip(grid, [99.78, 99.78, 99.78, 99.78, 99.56], strict=True)),
            "none": list(zip(grid, [99.0] * 5, strict=True)),
            "coarse": [(0.4, 99.78), (0.5, 99.7)],
        },
        grid=grid,
    )
    labels = curves.safe_labels(Tolerance(0.11))
    assert labels["fine"] == "0.315"  # not 0.32, which was measured below the floor
    assert labels["none"] == "<0.30"  # no sparsity it was measured at is safe: not "0.00"
    assert labels["coarse"] == "0.50+"  # measured at 2 of the 5 grid points


async def test_safe_of_a_layer_the_scan_stopped_in_reads_as_a_lower_bound(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        full = safe_cells(app)
        assert not any(cell.endswith("+") for cell in full.values())
        points = {name: list(p) for name, p in app.workbench.curves.points.items()}
        stopped = LAYERS[-1]
        points[stopped] = points[stopped][:2]  # a cancelled scan keeps the points it measured
        app.workbench.curves = ScanCurves(app.workbench.curves.base_accuracy, points)
        await pilot.pause()
        cells = safe_cells(app)
        expected = app.workbench.curves.safe_sparsity(stopped)
        assert cells[stopped] == f"{expected:.2f}+"
        assert {n: c for n, c in cells.items() if n != stopped} == {
            n: full[n] for n in LAYERS if n != stopped
        }


async def test_a_grid_wider_than_the_terminal_scrolls_sideways(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.scan_grid = tuple(round(0.3 + 0.02 * i, 2) for i in range(20))
        await pilot.press("s")
        await wait_idle(pilot)
        await pilot.press("T")
        grid = app.query_one(SensitivityGrid)
        assert grid.virtual_size.width > grid.size.width  # 20 columns do not fit in 80
        for _ in range(8):  # tab through the panes to it
            if app.focused is grid:
                break
            await pilot.press("tab")
        assert app.focused is grid
        await pilot.press("right", "right")
        assert grid.scroll_x > 0


@pytest.mark.parametrize("tolerance", [Tolerance(), Tolerance(1.0)])
def test_the_header_before_a_scan_fits_80_columns(tolerance):
    from prunetui.tui.widgets.plots.sensitivity_view import header_text

    for width in (76, 118):
        text = header_text(ScanCurves(), None, tolerance, False, width).plain
        assert len(text) <= width and text.startswith("no scan yet: s scans"), text
    assert "lab (lab" not in header_text(ScanCurves(), None, Tolerance(), False, 118).plain


async def test_the_header_in_the_app_fits_its_own_width_at_80_columns(app):
    from textual.widgets import Static

    from prunetui.tui.widgets.plots.sensitivity_view import SensitivityView

    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.show_plot("sensitivity-tab")
        await pilot.pause(0.2)
        header = app.query_one(SensitivityView).query_one("#sensitivity-header", Static)
        assert len(str(header.render())) <= header.content_size.width  # not cut by its padding
