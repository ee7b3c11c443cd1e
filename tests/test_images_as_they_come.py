"""Images as they come (issue #22 kind 5): an image folder's images read for the model's input channels
(1 -> L, 3 -> RGB) at their full range, whatever their PIL mode (sources/pixels.py's rules), with one
note saying what was converted and how.

Members: 8-bit grayscale (L), 1-bit (1), 16-bit grayscale PNG (I;16) and TIFF (I;16, 32-bit I), 32-bit
float (F), palette (P), RGBA, 16-bit RGB PNG (written by hand: PIL cannot write one), and all of them
mixed in one folder; for a 1-channel model, a 3-channel model and one whose channels are unknown.
"""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_json
from PIL import Image
from torch import nn

from prunetui.cli import main
from prunetui.sources import fingerprints
from prunetui.sources.data import load_data
from prunetui.sources.fit import input_channels

DARK, BRIGHT = {"L": 60, "I;16": 8000}, {"L": 190, "I;16": 50000}


def write(folder: Path, name: str, image: Image.Image, **options) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / name, **options)
    return folder / name


def gray_folder(root: Path, mode: str) -> Path:
    """The h36 case: 16 x 16 images of one value (dark or bright class, a few values each), both splits."""
    dtype = np.uint8 if mode == "L" else np.uint16
    for split in ("train", "val"):
        for label, values in (("0_dark", DARK), ("1_bright", BRIGHT)):
            for i in range(3):
                pixels = np.full((16, 16), values[mode] + i, dtype=dtype)
                write(root / split / label, f"{i}.png", Image.fromarray(pixels))
    return root


def png16(path: Path, pixels: np.ndarray, colour_type: int) -> Path:
    """A 16-bit PNG (colour type 0 gray, 2 RGB, 6 RGBA) written chunk by chunk: PIL reads them, never
    writes them."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)))
    path.write_bytes(path.read_bytes() + chunk(b"IEND", b""))
    return path


def palette_image(index: int) -> Image.Image:
    image = Image.new("P", (4, 4), index)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)  # 0 black, 1 red, 2 blue
    return image


def every_kind(root: Path) -> dict[str, Path]:
    """One 4 x 4 image of each kind in class a of train (class b and val: one RGB image each)."""
    a = root / "train" / "a"
    files = {
        "L": write(a, "l.png", Image.new("L", (4, 4), 60)),
        "1": write(a, "bits.png", Image.new("1", (4, 4), 1)),
        "I;16": write(a, "g16.png", Image.fromarray(np.full((4, 4), 50000, np.uint16))),
        "I;16 tiff": write(a, "g16.tif", Image.fromarray(np.full((4, 4), 8000, np.uint16))),
        "I": write(a, "g32.tif", Image.fromarray(np.full((4, 4), 40000, np.int32))),
        "F": write(a, "f.tif", Image.fromarray(np.full((4, 4), 0.25, np.float32))),
        "P": write(a, "p.png", palette_image(1)),
        "P transparent": write(a, "pt.png", palette_image(1), transparency=bytes([0, 128] + [255] * 254)),
        "RGBA": write(a, "rgba.png", Image.new("RGBA", (4, 4), (200, 100, 50, 10))),
        "RGB;16": png16(a / "rgb16.png", np.full((4, 4, 3), [50000, 1000, 65535]), 2),
        "RGB": write(a, "rgb.png", Image.new("RGB", (4, 4), (10, 20, 30))),
    }
    for split, label in (("train", "b"), ("val", "a"), ("val", "b")):
        write(root / split / label, "x.png", Image.new("RGB", (4, 4), (1, 2, 3)))
    return files


# What each kind's first pixel reads as: three channels, then one (PIL's luma, or the value itself).
RGB_VALUES = {
    "L": [60 / 255] * 3,
    "1": [1.0] * 3,
    "I;16": [50000 / 65535] * 3,
    "I;16 tiff": [8000 / 65535] * 3,
    "I": [40000 / 65535] * 3,
    "F": [0.25] * 3,
    "P": [1.0, 0.0, 0.0],  # the palette's red
    "P transparent": [1.0, 0.0, 0.0],  # transparency ignored
    "RGBA": [200 / 255, 100 / 255, 50 / 255],  # alpha dropped
    "RGB;16": [(50000 >> 8) / 255, (1000 >> 8) / 255, 1.0],  # PIL keeps the top byte
    "RGB": [10 / 255, 20 / 255, 30 / 255],
}
GRAY_VALUES = {
    "L": 60 / 255,
    "1": 1.0,
    "I;16": 50000 / 65535,
    "I;16 tiff": 8000 / 65535,
    "I": 40000 / 65535,
    "F": 0.25,
    "P": 76 / 255,  # luma of red: 255 * 299 / 1000, rounded by PIL
    "P transparent": 76 / 255,
    "RGBA": round((200 * 299 + 100 * 587 + 50 * 114) / 1000) / 255,
    "RGB;16": round((195 * 299 + 3 * 587 + 255 * 114) / 1000) / 255,
    "RGB": round((10 * 299 + 20 * 587 + 30 * 114) / 1000) / 255,
}


def first_pixels(data, files: dict[str, Path]) -> dict[str, list[float]]:
    dataset = data.train.dataset
    index = {path: i for i, (path, _) in enumerate(dataset.samples)}
    return {kind: dataset[index[str(path)]][0][:, 0, 0].tolist() for kind, path in files.items()}


@pytest.mark.filterwarnings("error")  # PIL warns on stderr for some conversions: none here
def test_every_kind_is_read_for_a_three_channel_model(tmp_path):
    files = every_kind(tmp_path)
    data = load_data(f"imagefolder:{tmp_path}", channels=3)
    assert data.input_shape == (3, 4, 4)
    read = first_pixels(data, files)
    for kind, expected in RGB_VALUES.items():
        assert read[kind] == pytest.approx(expected, abs=1e-6), kind
    assert [n for n in data.notes if "read as" in n] == [
        f"imagefolder {tmp_path}: read as 3 channels (RGB) for the model's 3 input channels: 1 1-bit (0 or 1), "
        "the channel repeated, 1 32-bit float grayscale (values as stored), the channel repeated, "
        "1 16-bit grayscale I (value / 65535: the full range), the channel repeated, "
        "2 16-bit grayscale I;16 (value / 65535: the full range), the channel repeated, "
        "1 8-bit grayscale, the channel repeated, 2 palette (its RGB colours; transparency ignored), 4 RGB, "
        "1 16-bit RGB (PIL keeps the top 8 bits: full range), "
        "1 RGBA (alpha dropped, as torchvision's ImageFolder; not composited)"
    ]


@pytest.mark.filterwarnings("error")  # PIL warns on stderr for some conversions: none here
def test_every_kind_is_read_for_a_one_channel_model(tmp_path):
    files = every_kind(tmp_path)
    data = load_data(f"imagefolder:{tmp_path}", channels=1)
    assert data.input_shape == (1, 4, 4)
    read = first_pixels(data, files)
    for kind, expected in GRAY_VALUES.items():
        assert read[kind] == pytest.approx([expected], abs=1e-6), kind
    note = next(n for n in data.notes if "read as" in n)
    assert "read as 1 channel (L) for the model's 1 input channel: " in note
    assert "2 palette (its RGB colours; transparency ignored), as luma 0.299 R + 0.587 G + 0.114 B" in note


@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_a_folder_of_one_kind_is_read_at_its_full_range(tmp_path, mode):
    data = load_data(f"imagefolder:{gray_folder(tmp_path, mode)}", channels=1)
    scale = 255 if mode == "L" else 65535
    images = torch.cat([x for x, _ in data.eval])
    expected = torch.tensor([DARK[mode] + i for i in range(3)] + [BRIGHT[mode] + i for i in range(3)])
    assert torch.allclose(images[:, 0, 0, 0], expected.float() / scale)
    assert data.notes == ([] if mode == "L" else [
        f"imagefolder {tmp_path}: read as 1 channel (L) for the model's 1 input channel: "
        "12 16-bit grayscale I;16 (value / 65535: the full range)"
    ])  # fmt: skip


def test_unknown_channels_follow_the_images(tmp_path):
    gray = load_data(f"imagefolder:{gray_folder(tmp_path / 'gray', 'I;16')}")
    assert gray.input_shape == (1, 16, 16)
    assert "(the model's input channels unknown: every image is single-band)" in gray.notes[0]
    every_kind(tmp_path / "mixed")
    assert load_data(f"imagefolder:{tmp_path / 'mixed'}").input_shape == (3, 4, 4)


def test_a_32_bit_image_beyond_16_bits_is_one_error_line(capsys, tmp_path):
    every_kind(tmp_path)
    big = write(tmp_path / "val" / "a", "big.tif", Image.fromarray(np.full((4, 4), 70000, np.int32)))
    assert main(["info", "--model", "vgg-cifar", "--data", f"imagefolder:{tmp_path}", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: data spec 'imagefolder:{tmp_path}': cannot read image {big} (32-bit values 70000..70000, "
        "outside the 16-bit range 0..65535 read here): replace or remove it"
    ]


def test_the_fingerprint_says_how_the_images_are_read(tmp_path):
    gray_folder(tmp_path / "gray", "L")
    one, three = (load_data(f"imagefolder:{tmp_path / 'gray'}", channels=c).fingerprint for c in (1, 3))
    assert one != three
    for split in ("train", "val"):
        write(tmp_path / "rgb" / split / "a", "x.png", Image.new("RGB", (4, 4), (1, 2, 3)))
    data = load_data(f"imagefolder:{tmp_path / 'rgb'}", channels=3)
    used = [(n, s.classes, s.samples) for n, s in (("train", data.train.dataset), ("val", data.eval.dataset))]
    assert data.fingerprint == fingerprints.of_image_folder(str(tmp_path / "rgb"), used)  # as before


def test_input_channels_are_the_first_convolutions():
    assert input_channels(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 3, 1))) == 1
    assert input_channels(nn.Sequential(nn.Conv1d(2, 4, 3))) == 2
    assert input_channels(nn.Sequential(nn.Flatten(), nn.Linear(48, 2))) is None
    assert input_channels(nn.Sequential(nn.LazyConv2d(4, 3))) is None


GRAYNET = """
import torch
from torch import nn


class Gray(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2, 1)
        with torch.no_grad():
            self.conv.weight[0] = -2.0 / channels     # logit0 = 1 - 2 * mean intensity
            self.conv.weight[1] = 2.0 / channels      # logit1 = 2 * mean intensity - 1
            self.conv.bias.copy_(torch.tensor([1.0, -1.0]))

    def forward(self, x):
        return self.conv(x).mean((2, 3))


def one_channel():
    return Gray(1)


def three_channel():
    return Gray(3)
"""


@pytest.mark.parametrize("factory", ["one_channel", "three_channel"])
@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_the_h36_folders_are_classified_as_they_really_are(capsys, tmp_path, monkeypatch, factory, mode):
    """A mean intensity above 0.5 is class 1: 100% only when every pixel reads its true value."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "graynet.py").write_text(GRAYNET)
    (tmp_path / "none.toml").write_text('name = "none"\n[sparsity]\n')
    gray_folder(tmp_path / "gray", mode)
    argv = ["--model", f"graynet.py:{factory}", "--data", "imagefolder:gray", "--device", "cpu"]
    doc, _ = run_json(capsys, "prune", *argv, "--profile", "none.toml")
    assert doc["accuracy_dense"] == 100.0
