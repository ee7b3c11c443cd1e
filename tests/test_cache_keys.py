"""Caches are keyed by content (issue 13, kind 6): data changed in place is scanned again and gives the new
accuracy; the same data at another path, or a seeded spec, is served from `.prunetui/scans/`."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from prunetui.cli import main
from prunetui.sources import load_data, open_model

DEMO_SCAN = ["--layers", "backbone.conv2.weight", "--sparsities", "0.5"]
COLOUR_MODEL = """
import torch
from torch import nn


def colour():
    conv = nn.Conv2d(3, 2, 1, bias=False)  # class 0 = green, class 1 = red
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).view(2, 3, 1, 1))
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""
GREEN, RED = (0, 200, 0), (200, 0, 0)


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """The cache lives in the working directory."""
    monkeypatch.chdir(tmp_path)


def scan_json(capsys, *argv) -> dict:
    assert main(["scan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# --- tensor: files ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_eval() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """120 digits eval images, their labels, and the demo model's predictions for them."""
    images, labels = (t[:120].clone() for t in load_data("digits").eval.dataset.tensors)
    with torch.no_grad():
        predicted = open_model("demo").model(images).argmax(dim=1)
    return images, labels, predicted


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * float((predicted == labels).float().mean())


def save_tensors(path: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    torch.save({"images": images, "labels": labels}, path)
    return path


def test_labels_changed_in_place_are_scanned_again(capsys, tmp_path, digits_eval):
    images, labels, predicted = digits_eval
    path = save_tensors(tmp_path / "eval.pt", images, labels)
    first = scan_json(capsys, "--data", f"tensor:{path}", *DEMO_SCAN)
    assert first["cached"] is False and first["dense_accuracy"] == pytest.approx(accuracy(predicted, labels))
    before = path.stat()
    relabelled = labels.clone()
    relabelled[:30] = (labels[:30] + 1) % 10  # 30 right answers become wrong
    save_tensors(path, images, relabelled)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same path, size and mtime
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    second = scan_json(capsys, "--data", f"tensor:{path}", *DEMO_SCAN)
    assert second["cached"] is False
    assert second["dense_accuracy"] == pytest.approx(accuracy(predicted, relabelled))
    assert second["dense_accuracy"] < first["dense_accuracy"] - 20


def test_images_changed_in_place_are_scanned_again(capsys, tmp_path, digits_eval):
    images, labels, predicted = digits_eval
    path = save_tensors(tmp_path / "eval.pt", images, labels)
    scan_json(capsys, "--data", f"tensor:{path}", *DEMO_SCAN)
    save_tensors(path, torch.zeros_like(images), labels)
    blank = scan_json(capsys, "--data", f"tensor:{path}", *DEMO_SCAN)
    with torch.no_grad():
        blank_predicted = open_model("demo").model(torch.zeros_like(images)).argmax(dim=1)
    assert blank["cached"] is False
    assert blank["dense_accuracy"] == pytest.approx(accuracy(blank_predicted, labels))


def test_same_tensors_at_another_path_are_served_from_the_cache(capsys, tmp_path, digits_eval):
    images, labels, predicted = digits_eval
    first = save_tensors(tmp_path / "eval.pt", images, labels)
    scanned = scan_json(capsys, "--data", f"tensor:{first}", *DEMO_SCAN)
    (tmp_path / "elsewhere").mkdir()
    copy = shutil.copyfile(first, tmp_path / "elsewhere" / "renamed.pt")  # a new mtime, the same bytes
    served = scan_json(capsys, "--data", f"tensor:{copy}", *DEMO_SCAN)
    assert served["cached"] is True and served["layers"] == scanned["layers"]
    assert served["dense_accuracy"] == pytest.approx(accuracy(predicted, labels))


def test_seeded_random_specs_are_served_from_the_cache(capsys):
    first = scan_json(capsys, "--data", "random:64:1x8x8", *DEMO_SCAN)
    again = scan_json(capsys, "--data", " random:64:1x8x8", *DEMO_SCAN)
    other = scan_json(capsys, "--data", "random:65:1x8x8", *DEMO_SCAN)
    assert (first["cached"], again["cached"], other["cached"]) == (False, True, False)
    assert again["dense_accuracy"] == first["dense_accuracy"] and other["eval_images"] == 65


# --- imagefolder: DIR ------------------------------------------------------------------------------
def png(path: Path, rgb: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), rgb).save(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    """Three images per colour in train/ and val/, and a notebook checkpoint the scanner leaves out."""
    root = tmp_path / "colours"
    for split in ("train", "val"):
        for name, rgb in (("green", GREEN), ("red", RED)):
            for i in range(3):
                png(root / split / name / f"{i}.png", tuple(max(0, c - 20 * i) for c in rgb))
    png(root / "val" / ".ipynb_checkpoints" / "0-checkpoint.png", RED)
    return root


@pytest.fixture
def colour_scan(tmp_path, capsys):
    """`scan --json` of a model that calls an image's dominant colour, on an image folder."""
    (tmp_path / "colour.py").write_text(COLOUR_MODEL)
    model = ["--model", f"{tmp_path / 'colour.py'}:colour", "--layers", "0.weight", "--sparsities", "0.5"]
    return lambda root: scan_json(capsys, "--data", f"imagefolder:{root}", *model)


def replace_an_image(root: Path) -> None:
    png(root / "val" / "green" / "0.png", RED)  # same name and size, now the wrong colour


def add_an_image(root: Path) -> None:
    png(root / "val" / "green" / "3.png", RED)


def remove_an_image(root: Path) -> None:
    (root / "val" / "red" / "2.png").unlink()


def change_a_train_image(root: Path) -> None:
    png(root / "train" / "red" / "0.png", (190, 0, 0))  # the taylor method scores on training batches


@pytest.mark.parametrize(
    ("change", "images", "expected"),
    [
        (replace_an_image, 6, 100 * 5 / 6),
        (add_an_image, 7, 100 * 6 / 7),
        (remove_an_image, 5, 100.0),
        (change_a_train_image, 6, 100.0),
    ],
)
def test_a_changed_image_folder_is_scanned_again(colour_scan, folder, change, images, expected):
    first = colour_scan(folder)
    assert (first["cached"], first["dense_accuracy"], first["eval_images"]) == (False, 100.0, 6)
    change(folder)
    second = colour_scan(folder)
    assert second["cached"] is False
    assert second["dense_accuracy"] == pytest.approx(expected) and second["eval_images"] == images


def test_a_copied_image_folder_is_served_from_the_cache(colour_scan, folder, tmp_path):
    replace_an_image(folder)
    first = colour_scan(folder)
    copy = shutil.copytree(folder, tmp_path / "copy" / "colours-renamed")  # keeps mtimes, as cp -a does
    (copy / "val" / ".ipynb_checkpoints" / "0-checkpoint.png").unlink()  # not used: not part of the data
    served = colour_scan(copy)
    assert served["cached"] is True and served["layers"] == first["layers"]
    assert served["dense_accuracy"] == pytest.approx(100 * 5 / 6)


# --- the fingerprint of each kind of spec ------------------------------------------------------------
def idx_file(path: Path, values: torch.Tensor) -> None:
    """An idx file as MNIST ships it: magic (uint8, rank), big-endian sizes, then the bytes."""
    header = bytes([0, 0, 8, values.dim()]) + b"".join(n.to_bytes(4, "big") for n in values.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + values.to(torch.uint8).numpy().tobytes())


def mnist_folder(root: Path, folder: str, labels: torch.Tensor) -> Path:
    raw = root / folder / "raw"
    images = torch.arange(len(labels) * 784).reshape(-1, 28, 28) % 251
    for split in ("train", "t10k"):
        idx_file(raw / f"{split}-images-idx3-ubyte", images)
        idx_file(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.mark.parametrize(("kind", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_folders_are_fingerprinted_by_their_bytes(tmp_path, kind, folder):
    labels = torch.arange(12) % 10
    first = load_data(f"{kind}:{mnist_folder(tmp_path / 'a', folder, labels)}").fingerprint
    copy = load_data(f"{kind}:{mnist_folder(tmp_path / 'b', folder, labels)}").fingerprint
    labels[0] = 9
    changed = load_data(f"{kind}:{mnist_folder(tmp_path / 'a', folder, labels)}").fingerprint
    assert first.startswith(f"{kind}:") and first == copy and changed != first


def test_seeded_and_shipped_data_keep_their_fingerprint():
    assert load_data("digits").fingerprint == load_data("digits").fingerprint
    assert load_data("digits").fingerprint.startswith("digits:")
    assert load_data("random:8:1x4x4").fingerprint == "random:8:1x4x4"
