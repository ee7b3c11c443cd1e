"""Image folders as they are on disk (issue 13, kind 4): what is not a class or an image is left out and
counted, labels stay right (a colour rule scores 100%), and every bad folder or file is one named error."""

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from prunetui.errors import UserError
from prunetui.sources import load_data

COLOURS = {"green": (0, 200, 0), "red": (200, 0, 0)}


def png(path: Path, rgb=(0, 200, 0), size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


def jpeg_bytes(rgb=(0, 200, 0), size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, "JPEG")
    return buffer.getvalue()


def dataset(root: Path, per_class: int = 4) -> Path:
    for split in ("train", "val"):
        for name, rgb in COLOURS.items():
            for i in range(per_class):
                png(root / split / name / f"{i}.png", tuple(max(0, c - 10 * i) for c in rgb))
    return root


def colour_accuracy(loader) -> float:
    """Class 0 = green, 1 = red: the rule a colour model learns."""
    right = total = 0
    for images, labels in loader:
        predicted = images[:, [1, 0]].mean(dim=(2, 3)).argmax(dim=1)
        right += int((predicted == labels).sum())
        total += len(labels)
    return 100.0 * right / total


def hidden_notebook_folder(root: Path) -> None:
    for split in ("train", "val"):
        png(root / split / ".ipynb_checkpoints" / "0-checkpoint.png")


def apple_double_files(root: Path) -> None:
    for split in ("train", "val"):
        for name in COLOURS:
            (root / split / name / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble, not a PNG")


def ds_store_and_macosx(root: Path) -> None:
    for split in ("train", "val"):
        (root / split / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / split / "green" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        png(root / split / "__MACOSX" / "green" / "._0.png")


def stray_files(root: Path) -> None:
    (root / "train" / "README.md").write_text("labels from the 2019 export")
    (root / "train" / "red" / "notes.txt").write_text("checked")
    (root / "val" / "green" / "labels.csv").write_text("0,green")


def hidden_folder_inside_a_class(root: Path) -> None:
    png(root / "train" / "red" / ".ipynb_checkpoints" / "0-checkpoint.png", (0, 200, 0))
    png(root / "val" / "green" / ".thumbnails" / "0.png", (200, 0, 0))


@pytest.mark.parametrize(
    ("mess", "ignored"),
    [
        (hidden_notebook_folder, "2 hidden entries (.ipynb_checkpoints)"),
        (apple_double_files, "4 hidden entries (._0.png)"),
        (ds_store_and_macosx, "6 hidden entries (.DS_Store, __MACOSX)"),
        (stray_files, "3 non-image files (README.md, labels.csv, notes.txt)"),
        (hidden_folder_inside_a_class, "2 hidden entries (.ipynb_checkpoints, .thumbnails)"),
    ],
)
def test_hidden_and_stray_entries_leave_the_labels_right(tmp_path, mess, ignored):
    root = dataset(tmp_path / "ds")
    mess(root)
    data = load_data(f"imagefolder:{root}", batch_size=3, eval_batch_size=5)
    assert data.num_classes == 2
    for split in (data.train.dataset, data.eval.dataset):
        assert split.classes == ["green", "red"]
        assert len(split) == 8
        assert all(label == split.classes.index(Path(path).parent.name) for path, label in split.samples)
    assert colour_accuracy(data.eval) == 100.0
    assert colour_accuracy(data.train) == 100.0
    assert data.notes == [f"imagefolder {root}: ignored {ignored}"]


def test_a_clean_folder_has_no_note_and_upper_case_extensions_count(tmp_path):
    root = dataset(tmp_path / "ds")
    png(root / "train" / "red" / "4.PNG", (200, 0, 0))
    data = load_data(f"imagefolder:{root}")
    assert data.notes == []
    assert len(data.train.dataset) == 9
    assert next(iter(data.eval))[0].shape == (8, 3, 8, 8)


def truncated_png(path: Path) -> None:
    png(path)
    path.write_bytes(path.read_bytes()[:-20])


def truncated_jpeg(path: Path) -> None:
    path.write_bytes(jpeg_bytes()[:-40])


def corrupt_png(path: Path) -> None:
    png(path)
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the image data: its CRC no longer matches
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("3.png", truncated_png),
        ("3.jpg", truncated_jpeg),
        ("3.png", corrupt_png),
        ("3.png", lambda p: p.write_bytes(b"")),
        ("3.jpeg", lambda p: p.write_text("not an image")),
    ],
    ids=["truncated-png", "truncated-jpeg", "corrupt-png", "empty", "text"],
)
def test_an_unreadable_image_is_named_before_any_job(tmp_path, name, write):
    root = dataset(tmp_path / "ds")
    bad = root / "val" / "red" / name
    bad.unlink(missing_ok=True)
    write(bad)
    with pytest.raises(UserError, match=rf"cannot read image {bad} \(.+\): replace or remove it$") as caught:
        load_data(f"imagefolder:{root}")
    assert "\n" not in str(caught.value)


def test_good_jpegs_pass_even_with_bytes_after_the_end_marker(tmp_path):
    root = dataset(tmp_path / "ds")
    (root / "train" / "green" / "a.jpg").write_bytes(jpeg_bytes())
    (root / "train" / "green" / "b.jpg").write_bytes(jpeg_bytes() + b"\x00" * 4000)  # camera trailer
    data = load_data(f"imagefolder:{root}")
    assert len(data.train.dataset) == 10
    assert colour_accuracy(data.train) == 100.0


@pytest.mark.parametrize("split", ["train", "val"])
def test_empty_class_folders_are_named(tmp_path, split):
    root = dataset(tmp_path / "ds")
    (root / "train" / "blue").mkdir()
    (root / "val" / "blue").mkdir()
    png(root / ("val" if split == "train" else "train") / "blue" / "0.png", (0, 0, 200))
    (root / split / "blue" / "notes.txt").write_text("to do")
    (root / split / "blue" / ".ipynb_checkpoints").mkdir()
    png(root / split / "blue" / ".ipynb_checkpoints" / "0.png")
    with pytest.raises(UserError, match=rf"class folders with no image in {root / split}: blue \(add images"):
        load_data(f"imagefolder:{root}")


def test_class_folders_that_differ_between_train_and_val_are_named(tmp_path):
    root = dataset(tmp_path / "ds")
    png(root / "train" / "blue" / "0.png", (0, 0, 200))
    png(root / "val" / "yellow" / "0.png", (200, 200, 0))
    png(root / "val" / "cyan" / "0.png", (0, 200, 200))
    with pytest.raises(UserError) as caught:
        load_data(f"imagefolder:{root}")
    assert str(caught.value) == (
        f"data spec 'imagefolder:{root}': train and val must have the same class folders "
        f"(only in {root / 'train'}: blue; only in {root / 'val'}: cyan, yellow)"
    )


def test_only_hidden_folders_is_no_classes(tmp_path):
    root = tmp_path / "ds"
    for split in ("train", "val"):
        png(root / split / ".ipynb_checkpoints" / "0.png")
    with pytest.raises(UserError, match=rf"no class folders in {root / 'train'}"):
        load_data(f"imagefolder:{root}")


def test_images_of_two_sizes_are_named_before_any_job(tmp_path):
    root = dataset(tmp_path / "ds")
    odd = png(root / "val" / "red" / "big.png", (200, 0, 0), size=(16, 12))
    with pytest.raises(UserError, match=rf"images differ in size \(.+ is 8x8, {odd} is 16x12\)"):
        load_data(f"imagefolder:{root}")


def test_an_image_changed_after_the_check_is_a_named_error(tmp_path):
    root = dataset(tmp_path / "ds", per_class=1)
    data = load_data(f"imagefolder:{root}")
    victim = root / "val" / "green" / "0.png"
    victim.write_bytes(b"gone")
    with pytest.raises(UserError, match=rf"cannot read image {victim}"):
        torch.cat([images for images, _ in data.eval])
