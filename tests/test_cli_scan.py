"""`prunetui scan`: the fast path by default, the cache, the evaluation subset and its standard error."""

import json
import math
from pathlib import Path

import pytest

from prunetui.cli import main

PRODUCT_KEYS = {"model", "sparsities", "dense_accuracy", "layers", "seconds"}
LAYER = ["--layers", "backbone.conv2.weight", "--sparsities", "0.5,0.9"]


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """The cache lives in the working directory: keep each test's apart."""
    monkeypatch.chdir(tmp_path)


def scan_json(capsys, *argv) -> tuple[dict, str]:
    assert main(["scan", *argv, "--json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_repeated_scan_is_served_from_the_cache(capsys, tmp_path):
    first, err = scan_json(capsys, *LAYER)
    assert set(first) >= PRODUCT_KEYS and first["path"] == "split" and first["cached"] is False
    assert "split path" in err
    second, err = scan_json(capsys, *LAYER)
    assert second["cached"] is True and "from the cache" in err
    assert second["layers"] == first["layers"] and second["dense_accuracy"] == first["dense_accuracy"]
    assert len(list((tmp_path / ".prunetui" / "scans").glob("*.json"))) == 1
    again, _ = scan_json(capsys, *LAYER, "--no-cache")
    assert again["cached"] is False and again["layers"] == first["layers"]


def test_eval_subset_reports_its_standard_error(capsys):
    doc, err = scan_json(capsys, *LAYER, "--eval-size", "50")
    p = doc["dense_accuracy"]
    assert doc["eval_images"] == 50
    assert doc["standard_error"] == pytest.approx(math.sqrt(p * (100 - p) / 50))
    assert "50 images, standard error" in err
    full, _ = scan_json(capsys, *LAYER)
    assert full["eval_images"] == 450 and full["cached"] is False  # another subset, another cache entry


def test_amp_option_runs_on_cpu(capsys):
    doc, _ = scan_json(capsys, *LAYER, "--amp", "bf16")
    assert doc["path"] == "split" and len(doc["layers"]["backbone.conv2.weight"]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "--eval-size", "0"],
        ["scan", "--amp", "fp8"],
        *(["scan", "--activation-budget", value] for value in ("0", "-64", "lots", "nan", "inf")),
        ["suggest", "--budget", "50%", "--activation-budget", "0"],
    ],
)
def test_bad_scan_options_are_one_error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    if "--activation-budget" in argv:
        assert "--activation-budget: expected a positive number of MiB" in err


def test_activation_budget_is_reported_and_keeps_the_grid(capsys):
    roomy, err = scan_json(capsys, *LAYER)  # a fresh scan through the cache keeps its memory report
    assert roomy["activation_budget_mib"] == 1024  # CPU's default
    assert 0 < roomy["planned_peak_mib"] <= 1024 and roomy["peak_memory_mib"] is None  # no CUDA
    assert "warning" not in err
    tight, err = scan_json(capsys, *LAYER, "--activation-budget", "0.25", "--no-cache")
    assert tight["activation_budget_mib"] == 0.25 and tight["planned_peak_mib"] <= 0.25
    assert tight["layers"] == roomy["layers"] and tight["dense_accuracy"] == roomy["dense_accuracy"]
    over, err = scan_json(capsys, *LAYER, "--activation-budget", "0.001", "--no-cache")
    assert over["planned_peak_mib"] > 0.001 and over["layers"] == roomy["layers"]
    assert "warning: one image needs about" in err
    assert err.index("warning: one image") < err.index("sparsity ")  # said above the table, not inside it


def test_the_table_names_a_fine_grid_as_it_is(capsys):
    doc, err = scan_json(capsys, *LAYER, "--sparsities", "0.315,0.32")
    assert doc["sparsities"] == [0.315, 0.32]
    assert err.splitlines()[0].split()[1:] == ["0.315", "0.32"]  # not 0.32 twice


def test_prune_finetunes_under_autocast(capsys):
    profile = str(Path(__file__).parents[1] / "profiles" / "demo-gentle.toml")
    assert main(["prune", "--profile", profile, "--finetune", "1", "--amp", "bf16", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["accuracy_after"] is not None and len(doc["epochs"]) == 1


def test_lines_wider_than_80_columns_are_not_wrapped_in_a_file(capsys):
    doc, err = scan_json(capsys, "--layers", "backbone.conv2.weight", "--sparsities", "0.1:1.0:0.05")
    lines = err.splitlines()
    assert len(doc["sparsities"]) == 18 and len(lines[0].split()) == 1 + 18  # the header, on one line
    assert len(lines[1].split()) == 1 + 18 and len(lines[1]) > 80  # the layer's row too
    assert any(line.endswith("for a point near 50%") and "standard error" in line for line in lines)
