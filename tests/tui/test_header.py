"""The header at 80 columns: the device stays, the model label is cut to a width that does not move as the
values change, and the current size keeps its percent of dense."""

import re

import pytest
import torch

from prunetui.core.session import Session
from prunetui.tui.widgets.status_line import Status, StatusLine, fitted_status_text

from .conftest import TinyNet, make_app, tiny_splits, wait_idle

LABELS = ["demo", "vgg-cifar", "torchvision:resnet18:10", "torchvision:mobilenet_v2:10", "a" * 60]
SIZE_PERCENT = re.compile(r"\d+\.\d\d MiB \d+\.\d% → ")


def states(label: str, device: str = "cpu", method: str = "magnitude") -> list[Status]:
    """What the header goes through: measuring, then pruning to smaller and smaller sizes."""
    return [
        Status(label, device, method, None, None, None, 42.64, None),
        Status(label, device, method, 92.95, 92.95, 42.64, 42.64, 42.64),
        Status(label, device, method, 92.95, 91.3, 42.64, 42.64, 9.87),
        Status(label, device, method, 92.95, 8.5, 4.26, 42.64, 0.43),
    ]


def model_part(text: str) -> str:
    return text.split(" ")[0]


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_at_80_columns_the_device_stays_and_the_size_keeps_its_percent(label, device):
    for status in states(label, device):
        text = fitted_status_text(status, 78).plain
        assert len(text) <= 78 and f" {device} " in text, text
        assert status.size_mib is None or SIZE_PERCENT.search(text), text
        assert "now " in text and "→ " in text, text


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("width", [78, 98, 118])
def test_the_label_is_cut_where_it_does_not_move_as_values_change(label, width):
    texts = [fitted_status_text(status, width).plain for status in states(label)]
    assert len({model_part(text) for text in texts}) == 1, texts
    for field in (" cpu ", " magnitude ", "dense "):  # nothing comes and goes either
        assert len({field in text for text in texts}) == 1, (field, texts)


def test_a_long_label_is_cut_to_a_fixed_width_from_the_left():
    text = fitted_status_text(states("torchvision:mobilenet_v2:10")[1], 78).plain
    assert model_part(text) == "…lenet_v2:10"
    text = fitted_status_text(states("x" * 60)[1], 118).plain
    assert len(model_part(text)) == 32 and model_part(text).startswith("…")


@pytest.mark.parametrize("label", LABELS[:4])
def test_at_80_columns_a_method_other_than_the_default_stays(label):
    for status in states(label, method="taylor"):
        text = fitted_status_text(status, 78).plain
        assert " cpu taylor " in text and "now " in text, text


def test_in_channel_mode_the_method_and_the_macs_stay_at_80_columns():
    status = Status("tiny", "cpu", "channel", 92.95, 90.1, 0.01, 0.01, 0.005, projected_macs=123_456)
    text = fitted_status_text(status, 78).plain
    assert text.startswith("tiny cpu channel ") and text.endswith("0.1M MACs"), text


@pytest.mark.parametrize("label", LABELS[:4])
def test_after_a_channel_prune_the_method_stays_at_80_columns(label):
    """The measured speed-up joins the size: the method, not the percent, is what must stay."""
    status = Status(label, "cpu", "channel", 99.56, 12.22, 0.07, 0.52, 0.03, projected_macs=123_456,
                    speedup="2.61x", projected_speedup=1.71)  # fmt: skip
    assert " channel " in fitted_status_text(status, 78).plain


def test_a_written_file_is_labelled_and_outlasts_the_dense_accuracy():
    status = Status("torchvision:resnet18:10", "cpu", "magnitude", 92.95, 91.3, 4.26, 42.64, 4.26,
                    file_bytes=557_158, file_ratio=1.0)  # fmt: skip
    wide = fitted_status_text(status, 118).plain
    assert "disk 544.1 KiB 1.0x" in wide, wide
    narrow = fitted_status_text(status, 90).plain
    assert "disk 544.1 KiB" in narrow and "dense" not in narrow, narrow


async def test_the_app_header_at_80x24_shows_the_device_and_the_size_percent(trained_state, tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    model.load_state_dict(trained_state)
    session = Session(model, tiny_splits(), label="torchvision:mobilenet_v2:10")
    app = make_app(session, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        before = app.query_one(StatusLine).render().plain
        await pilot.press("j", "8", "p")
        await wait_idle(pilot)
        after = app.query_one(StatusLine).render().plain
    for text in (before, after):
        assert text.startswith("…lenet_v2:10 cpu  dense "), text
        assert SIZE_PERCENT.search(text), text
    assert "% → " in after and before != after
