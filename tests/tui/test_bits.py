"""The TUI's part of issue 24: a Bits column edited with `i`, `Q` quantizes at those bits (masks kept), and
`w` writes a .ptz file whose bytes the header and the Runs tab show, as measured on disk."""

import os

import torch

from prunetui.core.ptz import load_ptz
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.widgets.layer_table import LayerTable

from .conftest import wait_idle


def bits_text(app, layer: str) -> str:
    return str(app.query_one(LayerTable).get_cell(layer, "bits")).strip()


async def test_i_cycles_the_bits_and_the_column_comes_and_goes(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("i")
        assert app.workbench.session.layer_bits == {"conv1.weight": 8} and bits_text(app, "conv1.weight") == "8"
        assert bits_text(app, "fc.weight") == "5"  # Han's default for a fully connected layer, dim
        await pilot.press("i", "i")
        assert app.workbench.session.layer_bits == {"conv1.weight": 6}
        await pilot.press(*["i"] * 5)  # 5, 4, 3, 2, then Han's default again: the column goes
        assert app.workbench.session.layer_bits == {}
        assert "bits" not in [column.key.value for column in app.query_one(LayerTable).columns.values()]
        assert app.workbench.session.profile("p").bits == {}


async def test_quantize_then_export_a_ptz_measured_on_disk(recording_app, tmp_path):
    app = recording_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv3.weight", 0.8)
        await pilot.press("p")
        await wait_idle(pilot)
        await pilot.press(*["i"] * 6)  # conv1: 3 bits
        pruned = app.workbench.session.model.conv3.weight == 0
        await pilot.press("Q")
        assert isinstance(app.screen, AskDialog)
        app.screen.query_one(ParsedInput).value = "1"
        await pilot.press("enter")
        await wait_idle(pilot)
        weights = dict(app.workbench.session.model.named_parameters())
        assert len(torch.unique(weights["conv1.weight"])) <= 2**3 + 1
        assert torch.equal(weights["conv3.weight"] == 0, pruned)  # the mask kept
        log = app.query_one("JobLog").texts
        assert any("after centroid finetuning" in line for line in log)
        await pilot.press("w")
        app.screen.query_one(ParsedInput).value = "m.ptz"
        await pilot.press("enter")
        await wait_idle(pilot)
        size = os.path.getsize(tmp_path / "m.ptz")
        assert app.workbench.status.file_bytes == size
        assert app.workbench.runs[-1].bytes_on_disk == {str(tmp_path / "m.ptz"): size}
        state, _ = load_ptz(tmp_path / "m.ptz")
        assert torch.equal(state["conv1.weight"], weights["conv1.weight"])
