"""A model with many layers (resnet18's 21 names): the table scrolls within its share, the plots and the
log keep their rows, wide terminals give the plots the width, the header stays one line, labels stay
unambiguous."""

import pytest
from textual.widgets import Tabs

from prunetui.tui.text import nice_ticks, short_label, tick_text
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.params_plot import ParamsPlot
from prunetui.tui.widgets.plots.weights_plot import WeightsPlot
from prunetui.tui.widgets.status_line import Status, fitted_status_text

from .conftest import make_app, wait_idle
from .many_layers import many_session

PANES = ("StatusLine", "LayerTable", "#plots", "JobLog", "Footer")


@pytest.fixture
def many_app(tmp_path):
    return make_app(many_session(), tmp_path)


def visible(app, selector: str) -> bool:
    region = app.query_one(selector).region
    return region.height > 0 and app.screen.region.contains_region(region)


@pytest.mark.parametrize("size", [(80, 24), (60, 20), (120, 40), (140, 40), (200, 60)])
async def test_table_plots_and_log_all_keep_rows(many_app, size):
    width, height = size
    async with many_app.run_test(size=size) as pilot:
        await wait_idle(pilot)
        app = many_app
        for selector in PANES:
            assert visible(app, selector), selector
        table = app.query_one(LayerTable)
        scrolls = table.region.height < table.row_count + 1  # 21 layers: it scrolls within its share
        assert scrolls or height >= 40
        assert app.query_one("#plots").region.height >= 6
        assert app.query_one("JobLog").region.height >= 4
        assert app.query_one("StatusLine").region.height == 1
        plots_width = app.query_one("#plots").region.width
        assert plots_width >= min(width - 2, 80)  # never narrower than stacked at 80 columns
        tabs = app.query_one(Tabs)
        assert tabs.region.right <= app.query_one("#plots").region.right
        assert all(tab.region.width > 0 for tab in tabs.query("Tab"))  # no tab cut (`eights`)
        await pilot.press(*["j"] * 20)
        assert app.workbench.selected_layer == "fc.weight"
        assert table.scroll_y > 0 or not scrolls  # the cursor's row scrolled into view


async def test_labels_stay_unambiguous(many_app):
    async with many_app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("j")
        assert "layer1.0.conv1 weights" in many_app.query_one(WeightsPlot).render().plain
        label = str(many_app.query_one(LayerTable).get_cell("layer2.0.downsample.0.weight", "layer"))
        assert label.strip() == "layer2.0.downsample.0"
        await pilot.press("t")
        ticks = many_app.query_one(ParamsPlot).render().plain
        assert "c0" not in ticks.split() and "l1" not in ticks.split()


def test_short_labels_keep_the_whole_name():
    assert short_label("layer1.0.conv1.weight") == "layer1.0.conv1"
    assert short_label("features.3.conv.0.0.weight") == "features.3.conv.0.0"
    assert short_label("classifier.weight") == "classifier"
    assert short_label("backbone.conv3.weight") == "backbone.conv3"
    assert short_label("pos_embedding") == "pos_embedding"


def test_axis_ticks_are_round_and_never_above_100():
    ticks = nice_ticks(96.11, 99.39, 5, top=100.0)
    assert ticks == [96.0, 97.0, 98.0, 99.0, 100.0]
    ticks = nice_ticks(89.4, 100.8, 5, top=100.0)
    assert ticks[-1] == 100.0 and all(t % 5 == 0 for t in ticks)
    assert [tick_text(t, [0.0, 2.5]) for t in (0.0, 2.5, 5.0)] == ["0.0", "2.5", "5.0"]


def test_the_header_fits_one_line_dropping_fields_by_priority():
    status = Status("torchvision:resnet18:10", "cpu", "magnitude", 92.95, 92.95, 42.64, 42.64, 42.64)
    full = fitted_status_text(status, 160).plain
    assert "cpu" in full and "magnitude" in full and "targets →" in full
    for width in (78, 70, 58, 40):
        text = fitted_status_text(status, width)
        assert text.cell_len <= width and "\n" not in text.plain
    at_80 = fitted_status_text(status, 78).plain
    assert "now 92.95%" in at_80 and "→ 42.64 MiB 100.0%" in at_80 and "resnet18" in at_80
    assert "dense 92.95%" in at_80


def test_at_80_columns_a_long_model_label_is_shortened_before_the_dense_accuracy_goes():
    """The device and the size's percent stay too (the method goes first: test_header.py)."""
    for dense in (None, 92.95):
        status = Status("torchvision:mobilenet_v2:10", "cpu", "magnitude", dense, 11.72, 8.53, 8.53, 8.53)
        text = fitted_status_text(status, 78).plain
        assert len(text) <= 78 and text.startswith("…") and "net_v2:10 cpu  dense " in text, text
        assert "now 11.72%" in text and "→ 8.53 MiB 100.0%" in text
    narrow = fitted_status_text(status, 50).plain
    assert len(narrow) <= 50 and "magnitude" not in narrow and "now 11.72%" in narrow


def test_the_device_always_shows():
    """The README says the header shows it: at 80 columns too, whatever the values."""
    states = [
        Status("demo", "cpu", "magnitude", None, None, None, 0.02, None),
        Status("demo", "cpu", "magnitude", 92.95, 92.95, 0.02, 0.02, 0.02),
        Status("demo", "cpu", "channel", 92.95, 90.1, 0.01, 0.02, 0.005, projected_macs=1_234_567),
        Status("demo", "cpu", "magnitude", 92.95, 92.95, 0.02, 0.02, 0.02, 0.01, 90.0),
    ]
    for status in states:
        assert fitted_status_text(status, 78).plain.startswith("demo cpu ")
        assert fitted_status_text(status, 200).plain.startswith(f"demo cpu {status.method}  │")
