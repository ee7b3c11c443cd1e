"""Names typed on the command line: short layer names for --layers and --lock (resolved once, by
core.profile.resolve_layer_names), the --method help kept equal to the registry, the scan's standard
error line, and the warning for a model with more outputs than the data has classes."""

import argparse
import json
import subprocess
import sys
import textwrap

import pytest

from prunetui.cli import METHOD_NAMES, build_parser, main
from prunetui.commands import _scan_details
from prunetui.core.methods import METHODS
from prunetui.core.profile import Profile, check_layers, resolve_layer_names
from prunetui.core.sensitivity import ScanResult
from prunetui.errors import UserError
from prunetui.workflow.opening import Request, open_session

VGG = [f"backbone.conv{i}.weight" for i in range(8)] + ["classifier.weight"]
RESNET = [
    "conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight", "layer2.0.conv1.weight",
    "layer2.0.conv2.weight", "layer2.0.downsample.0.weight", "fc.weight",
]  # fmt: skip
SEQUENTIAL = ["features.0.weight", "features.3.weight", "classifier.0.weight", "classifier.6.weight"]
TOP_LEVEL = ["0.weight", "3.weight", "backbone.0.weight"]  # an exact name is also the end of another


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("names", "typed", "full"),
    [
        (VGG, "backbone.conv3.weight", "backbone.conv3.weight"),
        (VGG, "conv0.weight", "backbone.conv0.weight"),
        (VGG, "conv0", "backbone.conv0.weight"),
        (VGG, "backbone.conv7", "backbone.conv7.weight"),
        (VGG, "classifier", "classifier.weight"),
        (RESNET, "conv1.weight", "conv1.weight"),  # the exact name, not layer1.0.conv1.weight
        (RESNET, "fc", "fc.weight"),
        (RESNET, "layer1.0.conv1", "layer1.0.conv1.weight"),
        (RESNET, "downsample.0", "layer2.0.downsample.0.weight"),
        (RESNET, "layer2.0.conv2", "layer2.0.conv2.weight"),
        (SEQUENTIAL, "features.3", "features.3.weight"),
        (SEQUENTIAL, "6.weight", "classifier.6.weight"),
        (TOP_LEVEL, "0.weight", "0.weight"),
        (TOP_LEVEL, "3", "3.weight"),
    ],
)
def test_a_unique_end_at_a_dot_is_the_full_name(names, typed, full):
    assert resolve_layer_names([typed], names) == [full]


@pytest.mark.parametrize(
    ("names", "typed", "count", "shown"),
    [
        (VGG, "weight", 9, "backbone.conv0.weight, backbone.conv1.weight, backbone.conv2.weight and 6 more"),
        (RESNET, "conv1", 3, "conv1.weight, layer1.0.conv1.weight, layer2.0.conv1.weight"),
        (RESNET, "0.conv2", 2, "layer1.0.conv2.weight, layer2.0.conv2.weight"),
        (SEQUENTIAL, "0", 2, "features.0.weight, classifier.0.weight"),
        (TOP_LEVEL, "0", 2, "0.weight, backbone.0.weight"),
    ],
)
def test_a_name_matching_several_layers_lists_them(names, typed, count, shown):
    with pytest.raises(UserError) as error:
        resolve_layer_names([typed], names, "--layers: ")
    assert str(error.value) == f"--layers: {typed} matches {count} layers: {shown}; give more of the name"


@pytest.mark.parametrize(
    ("names", "typed", "closest"),
    [
        (VGG, "conv9.weight", "backbone.conv0.weight, backbone.conv1.weight, backbone.conv2.weight"),
        (VGG, "clasifier", "classifier.weight"),
        (VGG, "onv0.weight", "backbone.conv0.weight"),  # an end inside a word is no match
        (RESNET, "2.0.conv2.weight", "layer1.0.conv2.weight, layer2.0.conv2.weight"),  # nor here
        (RESNET, "layer3.0.conv1", "layer1.0.conv1.weight, layer2.0.conv1.weight"),
        (SEQUENTIAL, "features.9", "features.0.weight, features.3.weight"),
    ],
)
def test_an_unknown_name_lists_the_closest(names, typed, closest):
    with pytest.raises(UserError) as error:
        resolve_layer_names([typed], names, "--lock: ")
    message = str(error.value)
    assert message.startswith(f"--lock: unknown layer {typed}; closest: ")
    assert message.split("closest: ")[1].startswith(closest)


def test_names_keep_their_order_and_come_once():
    typed = ["classifier", "conv2", "backbone.conv2.weight", "conv0.weight"]
    assert resolve_layer_names(typed, VGG) == [
        "classifier.weight",
        "backbone.conv2.weight",
        "backbone.conv0.weight",
    ]


def test_profiles_keep_exact_names():
    with pytest.raises(UserError, match="unknown layer conv0.weight; closest: backbone.conv0.weight"):
        check_layers(Profile("short", {"conv0.weight": 0.5}), VGG)


def test_scan_layers_take_short_names(capsys):
    assert main(["scan", "--layers", "conv1.weight, classifier", "--sparsities", "0.5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["layers"]) == ["backbone.conv1.weight", "classifier.weight"]


def test_the_users_vgg_scan_takes_short_names(capsys):
    argv = ["scan", "--model", "vgg-cifar", "--data", "random:16:3x32x32", "--sparsities", "0.5"]
    assert main([*argv, "--layers", "conv0.weight,conv1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["layers"]) == ["backbone.conv0.weight", "backbone.conv1.weight"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan", "--layers", "weight"], "error: --layers: weight matches 6 layers: backbone.conv0.weight, "),
        (["scan", "--layers", "conv1,conv9"], "error: --layers: unknown layer conv9; closest: backbone.conv"),
        (["suggest", "--budget", "50%", "--lock", "weight"], "error: --lock: weight matches 6 layers"),
        (["suggest", "--budget", "50%", "--lock", "conv0.bias"], "error: --lock: unknown layer conv0.bias"),
    ],
)
def test_layer_names_that_are_not_one_layer_are_one_error_line(capsys, argv, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith(message)


def test_suggest_locks_a_short_name_at_its_profile_target(capsys, tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('[sparsity]\n"backbone.conv0.weight" = 0.25\n')
    argv = ["suggest", "--budget", "60%", "--profile", str(profile), "--lock", "conv0", "--refine", "0"]
    assert main([*argv, "--sparsities", "0.5,0.9", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["locked"] == ["backbone.conv0.weight"]
    assert doc["targets"]["backbone.conv0.weight"] == pytest.approx(0.25)


def test_method_names_are_the_registrys_and_all_in_the_help():
    assert tuple(METHODS) == METHOD_NAMES
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    scan = commands.choices["scan"]
    method = next(action for action in scan._actions if "--method" in action.option_strings)
    assert tuple(method.choices) == tuple(METHODS)
    assert all(f"{name}: " in method.help for name in METHODS)


def test_help_lists_every_method_without_importing_torch():
    code = textwrap.dedent(
        """
        import contextlib, io, sys
        from prunetui.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(["scan", "--help"])
        print("torch" in sys.modules)
        print(" ".join(out.getvalue().split()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    imported, text = done.stdout.splitlines()
    assert imported == "False"
    assert all(f"{name}: " in text for name in METHODS) and "channel: whole output channels" in text


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            ScanResult([0.5], 90.0, images=100, path="split"),
            "split path, 100 images, standard error ±3.00 points at 90.00% accuracy, "
            "up to ±5.00 for a point near 50%",
        ),
        (
            ScanResult([0.5], 9.375, images=128, path="full"),
            "full path, 128 images, standard error ±2.58 points at 9.38% accuracy, "
            "up to ±4.42 for a point near 50%",
        ),
        (
            ScanResult([0.5], 99.0, images=10000, cached=True),
            "from the cache, 10000 images, standard error ±0.10 points at 99.00% accuracy, "
            "up to ±0.50 for a point near 50%",
        ),
        (ScanResult([0.5], None, images=100, path="plain"), "plain path"),
    ],
)
def test_the_scan_says_what_its_standard_errors_are(result, line):
    assert _scan_details(result) == line


FACTORIES = textwrap.dedent(
    """
    from torch import nn

    def head(outputs):
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, outputs))

    def sixteen():
        return head(16)

    def ten():
        return head(10)
    """
)


def _warnings(capsys, *argv) -> list[str]:
    assert main(["info", *argv, "--json"]) == 0
    _, err = capsys.readouterr()
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize(
    ("model", "data", "warning"),
    [
        (
            "torchvision:resnet18",
            "random:8:3x32x32",
            "warning: model torchvision:resnet18 has 1000 outputs but random:8:3x32x32 has 10 classes, so "
            "accuracy counts every prediction above class 9 as wrong: torchvision:resnet18:10 builds a "
            "10-class head, or load a checkpoint trained for these classes",
        ),
        (
            "torchvision:mobilenet_v3_small:12",
            "random:8:3x32x32",
            "warning: model torchvision:mobilenet_v3_small:12 has 12 outputs but random:8:3x32x32 has 10 "
            "classes, so accuracy counts every prediction above class 9 as wrong: "
            "torchvision:mobilenet_v3_small:10 builds a 10-class head, or load a checkpoint trained for "
            "these classes",
        ),
        (
            "nets.py:sixteen",
            "random:8:3x8x8",
            "warning: model nets.py:sixteen has 16 outputs but random:8:3x8x8 has 10 classes, so accuracy "
            "counts every prediction above class 9 as wrong: build the model with 10 outputs, or load a "
            "checkpoint trained for these classes",
        ),
        ("torchvision:resnet18:10", "random:8:3x32x32", None),
        ("nets.py:ten", "random:8:3x8x8", None),
    ],
)
def test_more_outputs_than_classes_is_a_warning(capsys, tmp_path, model, data, warning):
    (tmp_path / "nets.py").write_text(FACTORIES)
    assert _warnings(capsys, "--model", model, "--data", data) == ([warning] if warning else [])


def test_the_warning_reaches_the_workbench_log_and_counts_the_datas_classes(tmp_path):
    import torch

    (tmp_path / "nets.py").write_text(FACTORIES)
    images, labels = torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.save({"images": images, "labels": labels}, tmp_path / "three.pt")
    opened = open_session(Request(model="nets.py:ten", data="tensor:three.pt", device="cpu"), tmp_path)
    warnings = [note for note in opened.notes if note.startswith("warning:")]
    assert warnings == [
        "warning: model nets.py:ten has 10 outputs but tensor:three.pt has 3 classes, so accuracy counts "
        "every prediction above class 2 as wrong: build the model with 3 outputs, or load a checkpoint "
        "trained for these classes"
    ]
