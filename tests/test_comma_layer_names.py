"""Layer names with a comma (issue #22 kind 9): nn.ModuleDict keys may hold any character but a dot, so
`convs.3,3.weight` is a real layer. `--layers` and `--lock` split their text at commas; a comma inside a
real name (or a short form of one) stays, the longest such name first (core.profile.split_layer_names)."""

import textwrap

import pytest
from conftest import run_json

from prunetui.cli import main
from prunetui.core.profile import resolve_layer_names, split_layer_names
from prunetui.errors import UserError

NAMES = ["stem.weight", "convs.3,3.weight", "convs.1, 1.weight", "convs.3.weight", "head.weight"]


@pytest.mark.parametrize(
    ("typed", "full"),
    [
        ("convs.3,3.weight", ["convs.3,3.weight"]),
        ("convs.3,3", ["convs.3,3.weight"]),  # the module's name stands for its weight
        ("3,3", ["convs.3,3.weight"]),  # the end of one name, at a dot
        ("3,3,head", ["convs.3,3.weight", "head.weight"]),
        ("stem, 3,3.weight ,head", ["stem.weight", "convs.3,3.weight", "head.weight"]),
        ("convs.1, 1", ["convs.1, 1.weight"]),  # a comma and a blank inside the name
        ("convs.3,stem", ["convs.3.weight", "stem.weight"]),  # no real name runs through this comma
        ("stem,convs.3", ["stem.weight", "convs.3.weight"]),
    ],
)
def test_a_comma_inside_a_real_name_stays(typed, full):
    assert resolve_layer_names(split_layer_names(typed, NAMES), NAMES) == full


def test_names_without_commas_split_as_before():
    assert split_layer_names(" conv1.weight, classifier ,", ["a.weight"]) == ["conv1.weight", "classifier"]
    assert split_layer_names("", NAMES) == []


def test_a_misspelt_comma_name_suggests_the_real_one():
    with pytest.raises(UserError) as error:
        resolve_layer_names(split_layer_names("convs.3,4", NAMES), NAMES, "--layers: ")
    assert str(error.value).startswith("--layers: unknown layer 4; closest: ")


@pytest.fixture
def comma_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "commas.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn


            class Commas(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.convs = nn.ModuleDict({"3,3": nn.Conv2d(1, 4, 3, padding=1), "3": nn.Conv2d(4, 4, 1)})
                    self.head = nn.Linear(4, 10)

                def forward(self, x):
                    return self.head(self.convs["3"](self.convs["3,3"](x)).mean((2, 3)))


            def commas():
                torch.manual_seed(0)
                return Commas()
            """
        )
    )
    return ["--model", "commas.py:commas", "--data", "random:8:1x6x6", "--device", "cpu"]


def test_scan_takes_a_layer_with_a_comma(capsys, comma_model):
    doc, _ = run_json(capsys, "scan", *comma_model, "--sparsities", "0.5", "--layers", "3,3,head")
    assert list(doc["layers"]) == ["convs.3,3.weight", "head.weight"]


def test_suggest_locks_a_layer_with_a_comma(capsys, comma_model):
    argv = ["suggest", *comma_model, "--budget", "60%", "--lock", "convs.3,3", "--refine", "0"]
    doc, _ = run_json(capsys, *argv, "--sparsities", "0.5,0.9")
    assert doc["locked"] == ["convs.3,3.weight"] and doc["targets"]["convs.3,3.weight"] == 0.0


def test_a_comma_name_that_is_not_a_layer_is_one_error_line(capsys, comma_model):
    assert main(["scan", *comma_model, "--layers", "convs.3,9"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: --layers: unknown layer 9; closest: ")
