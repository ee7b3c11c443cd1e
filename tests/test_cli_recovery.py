"""Issue 16 on the command line: --recalibrate-bn on prune, scan and suggest; --schedule agp and --distill
with --finetune (in one and two processes); suggest --global; the measured suggestion's JSON keys."""

from pathlib import Path

import pytest
from conftest import run_json

from prunetui.cli import main

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
AGGRESSIVE = str(PROFILES / "demo-aggressive.toml")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_prune_with_recalibration_reports_its_own_line_and_key(capsys):
    plain, _ = run_json(capsys, "prune", "--profile", AGGRESSIVE)
    assert plain["accuracy_recalibrated"] is None and plain["schedule"] == "oneshot"
    doc, err = run_json(capsys, "prune", "--profile", AGGRESSIVE, "--recalibrate-bn")
    assert doc["accuracy_before"] == plain["accuracy_before"]  # the lab's number is untouched
    assert doc["accuracy_recalibrated"] > doc["accuracy_before"]
    assert f"Sparse model has accuracy={doc['accuracy_recalibrated']:.2f}% after BN recalibration" in err
    runs, _ = run_json(capsys, "runs")
    assert runs["runs"][-1]["accuracy_before"] == doc["accuracy_before"]


def test_agp_with_distillation_ends_at_the_exact_targets(capsys):
    doc, err = run_json(
        capsys, "prune", "--profile", AGGRESSIVE, "--finetune", "1", "--schedule", "agp", "--distill"
    )
    assert doc["schedule"] == "agp" and doc["distill"] is True and doc["accuracy_before"] is None
    assert "Gradual pruning (AGP)" in err and "distilling from the model as opened" in err
    for layer in doc["layers"]:
        assert layer["sparsity"] == pytest.approx(layer["target"], abs=1e-3)


def test_a_recalibrated_scan_is_its_own_scan(capsys):
    args = ("scan", "--sparsities", "0.9", "--layers", "backbone.conv4.weight")
    plain, _ = run_json(capsys, *args)
    recalibrated, _ = run_json(capsys, *args, "--recalibrate-bn")
    assert not plain["recalibrate_bn"] and recalibrated["recalibrate_bn"]
    row = "backbone.conv4.weight"
    assert recalibrated["layers"][row][0] > plain["layers"][row][0] + 20  # the BN collapse, recovered


def test_suggest_with_recalibration_holds_90_percent_at_10_percent_of_dense(capsys):
    doc, err = run_json(
        capsys,
        "suggest",
        "--budget",
        "10%",
        "--recalibrate-bn",
        "--sparsities",
        "0.8,0.95",
        "--refine",
        "8",
    )
    assert doc["percent_of_dense"] <= 10.0
    assert 0.0 <= doc["predicted_accuracy"] <= 100.0
    assert doc["accuracy_recalibrated"] >= 90.0
    baselines = doc["baselines"]
    assert set(baselines) == {"scan", "global", "uniform"}
    assert doc["refine"]["accuracy"] >= max(b["accuracy"] for b in baselines.values())
    assert doc["accuracy_recalibrated"] == pytest.approx(doc["refine"]["accuracy"])  # measured the same way
    assert "Measured after BN recalibration" in err


def test_suggest_global_is_global_magnitude_at_the_budget(capsys):
    doc, _ = run_json(capsys, "suggest", "--budget", "25%", "--global")
    assert doc["source"] == "global" and doc["predicted_accuracy"] is None
    assert 24.9 < doc["percent_of_dense"] <= 25.0
    capped, _ = run_json(capsys, "suggest", "--budget", "5%", "--global", "--cap", "0.9")
    assert max(capped["targets"].values()) <= 0.9


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["prune", "--profile", AGGRESSIVE, "--schedule", "agp"], "--finetune"),
        (["prune", "--profile", AGGRESSIVE, "--distill"], "--finetune"),
        (["prune", "--profile", AGGRESSIVE, "--finetune", "1", "--alpha", "2"], "--alpha"),
        (["prune", "--profile", AGGRESSIVE, "--finetune", "1", "--agp-share", "0"], "--agp-share"),
        (["suggest", "--budget", "25%", "--cap", "0.9"], "--cap goes with --global"),
        (["suggest", "--max-drop", "1", "--global"], "--global needs --budget"),
        (["scan", "--recalibrate-bn", "--nproc", "2"], "one process"),
    ],
)
def test_recovery_flag_mistakes_are_one_error_line(capsys, argv, says):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and len(err.splitlines()) == 1


def test_distillation_and_agp_on_two_processes(capsys):
    """The teacher (the dense weights) reaches every rank; the AGP masks come back from them."""
    argv = [
        "prune",
        "--profile",
        AGGRESSIVE,
        "--finetune",
        "1",
        "--nproc",
        "2",
        "--distill",
        "--schedule",
        "agp",
    ]
    doc, err = run_json(capsys, *argv)
    assert doc["distill"] is True and doc["accuracy_after"] is not None
    assert "distilling from the model as opened" in err
    for layer in doc["layers"]:
        assert layer["sparsity"] == pytest.approx(layer["target"], abs=1e-3)
