"""Every combination composes, through the command line (issue 21): method (magnitude, taylor, channel) x
schedule (oneshot, agp) x distillation x BN recalibration, each a `prune --finetune --out --onnx` run,
killed after its first epoch and resumed, its export reopened as what it is; channel with AGP refused
before any work. Then, per method: scan and suggest over the model's prunable units, and the export
pruned again (same method, and magnitude on top) and reopened. The demo on 160 real digits images."""

import itertools
import json

import numpy as np
import pytest
import torch
from conftest import run_json

from prunetui.cli import main
from prunetui.core import training
from prunetui.core.events import EpochEnd
from prunetui.core.onnx_export import onnx_outputs
from prunetui.core.recipe import RECIPE_VERSION
from prunetui.sources import open_model
from prunetui.workflow.opening import Request, open_session

METHODS = ("magnitude", "taylor", "channel")
TARGETS = {"backbone.conv1.weight": 0.5, "backbone.conv3.weight": 0.6}
CELLS = list(itertools.product(METHODS, ("oneshot", "agp"), (False, True), (False, True)))


def profile(path, method: str, targets: dict[str, float] = TARGETS) -> str:
    lines = "".join(f'"{name}" = {value}\n' for name, value in targets.items())
    path.write_text(f'name = "{method}"\nmethod = "{method}"\n[sparsity]\n{lines}')
    return str(path)


def recipe_flags(schedule: str, distill: bool, recalibrate: bool) -> list[str]:
    flags = ["--schedule", schedule] + (["--distill"] if distill else [])
    return flags + (["--recalibrate-bn"] if recalibrate else [])


@pytest.fixture
def killed_after_epoch_one(monkeypatch):
    """Each finetune in this process dies after its first epoch's state is saved (as a kill would)."""
    real = training.run_here

    def dying(job):
        def report(event):
            job_report(event)
            if isinstance(event, EpochEnd) and event.epoch == 1:
                raise KeyboardInterrupt

        job_report = job.report
        job.report = report
        return real(job)

    monkeypatch.setattr(training, "run_here", dying)
    return lambda: monkeypatch.setattr(training, "run_here", real)


@pytest.mark.parametrize("method, schedule, distill, recalibrate", CELLS)
def test_every_combination_prunes_finetunes_resumes_exports_and_reopens(
    capsys, tmp_path, monkeypatch, digits160, killed_after_epoch_one, method, schedule, distill, recalibrate
):
    monkeypatch.chdir(tmp_path)
    argv = [
        "prune",
        "--data",
        digits160,
        "--profile",
        profile(tmp_path / "p.toml", method),
        "--finetune",
        "2",
    ]
    argv += [
        *recipe_flags(schedule, distill, recalibrate),
        "--out",
        "x.pt",
        "--onnx",
        "x.onnx",
        "--seed",
        "3",
    ]
    if method == "channel" and schedule == "agp":  # refused before any work, in one line
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith("error: channel pruning removes channels in one step")
            and len(err.splitlines()) == 1
        )
        assert not list(tmp_path.glob("*.pt")) and not (tmp_path / ".prunetui").exists()
        return

    assert main([*argv, "--json"]) == 130  # killed after epoch 1: nothing written yet
    capsys.readouterr()
    assert not (tmp_path / "x.pt").exists()
    killed_after_epoch_one()  # restore
    runs, _ = run_json(capsys, "runs", "--data", digits160)
    [interrupted] = [row for row in runs["runs"] if row["kind"] == "finetune"]
    assert interrupted["status"] == "failed" and interrupted["epochs"] == 1
    resumed, _ = run_json(capsys, "resume", str(interrupted["number"]), "--data", digits160)

    assert resumed["status"] == "finished" and resumed["epochs"] == 2
    recipe = resumed["recipe"]
    assert recipe["plan"]["method"] == method and recipe["recovery"]["schedule"] == schedule
    assert recipe["recovery"]["distill"] == distill and recipe["recovery"]["recalibrate_bn"] == recalibrate
    assert resumed["schedule"] == schedule and (resumed["distill"] is not None) == distill
    assert set(resumed["weights"]) == {"checkpoint", "onnx"}  # the resumed run wrote what the run asked for
    assert not list((tmp_path / ".prunetui" / "runs").glob("*.pt"))  # state dropped once they were written
    recalibrated = [
        row["accuracy_recalibrated"] for row in run_json(capsys, "runs", "--data", digits160)[0]["runs"]
    ]
    assert any(value is not None for value in recalibrated) == recalibrate

    info, _ = run_json(capsys, "info", "--data", digits160, "--checkpoint", "x.pt")
    assert info["sparse_size_mib"] == pytest.approx(resumed["sparse_size_mib"])
    assert (
        info["percent_of_dense"] == pytest.approx(resumed["percent_of_dense"])
        and info["percent_of_dense"] < 100
    )
    if method != "channel":  # the exact targets: one-shot, or grown by AGP
        zeros = {layer["name"]: layer["zero_fraction"] for layer in info["layers"]}
        for name, target in TARGETS.items():
            assert zeros[name] >= target - 1e-3
    model = open_model("demo", "x.pt").model.eval()
    images = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        expected = model(images).numpy()
    np.testing.assert_allclose(onnx_outputs(tmp_path / "x.onnx", images), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("recalibrate", [False, True])
def test_scan_covers_every_prunable_unit(capsys, tmp_path, monkeypatch, digits160, method, recalibrate):
    monkeypatch.chdir(tmp_path)
    flags = ["--recalibrate-bn"] if recalibrate else []
    scan, _ = run_json(capsys, "scan", "--data", digits160, "--method", method, "--sparsities", "0.5", *flags)
    units = open_session(Request(data=digits160, method=method), tmp_path).session.unit_names()
    assert list(scan["layers"]) == units and scan["method"] == method
    assert "classifier.weight" not in units if method == "channel" else "classifier.weight" in units
    assert scan["recalibrate_bn"] == recalibrate


@pytest.mark.parametrize("method", METHODS)
def test_suggest_and_prune_again_from_the_export(capsys, tmp_path, monkeypatch, digits160, method):
    monkeypatch.chdir(tmp_path)
    suggested, _ = run_json(
        capsys, "suggest", "--data", digits160, "--method", method, "--budget", "70%",
        "--sparsities", "0.5,0.8", "--refine", "2", "--out", "s.toml",
    )  # fmt: skip
    assert suggested["method"] == method and suggested["percent_of_dense"] <= 70.0 + 1e-6
    assert suggested["accuracy_before"] is not None
    first, _ = run_json(capsys, "prune", "--data", digits160, "--profile", "s.toml", "--out", "a.pt")
    again = {"backbone.conv2.weight": 0.5} if method == "channel" else {"backbone.conv2.weight": 0.7}
    second, _ = run_json(
        capsys, "prune", "--data", digits160, "--checkpoint", "a.pt", "--profile", profile(tmp_path / "q.toml", method, again),
        "--out", "b.pt",
    )  # fmt: skip
    on_top, _ = run_json(
        capsys, "prune", "--data", digits160, "--checkpoint", "a.pt",
        "--profile", profile(tmp_path / "m.toml", "magnitude", {"backbone.conv4.weight": 0.7}), "--out", "c.pt",
    )  # fmt: skip
    for result, path in ((second, "b.pt"), (on_top, "c.pt")):
        reopened, _ = run_json(capsys, "info", "--data", digits160, "--checkpoint", path)
        assert reopened["sparse_size_mib"] == pytest.approx(result["sparse_size_mib"])
        assert result["sparse_size_mib"] < first["sparse_size_mib"]
        assert reopened["dense_size_mib"] == pytest.approx(first["dense_size_mib"])  # the first dense size


def test_a_recipe_is_in_every_record_and_export(capsys, tmp_path, monkeypatch, digits160):
    monkeypatch.chdir(tmp_path)
    argv = [
        "prune",
        "--data",
        digits160,
        "--profile",
        profile(tmp_path / "p.toml", "taylor"),
        "--finetune",
        "1",
    ]
    run_json(capsys, *argv, "--distill", "--seed", "5", "--out", "x.pt")
    saved = torch.load(tmp_path / "x.pt", weights_only=True)["prunetui"]["recipe"]
    records = [json.loads(path.read_text()) for path in (tmp_path / ".prunetui" / "runs").glob("*.json")]
    assert {record["recipe"]["version"] for record in records} == {RECIPE_VERSION}
    assert saved["plan"] == {"method": "taylor", "targets": TARGETS} and saved["seed"] == 5
    assert saved["recovery"]["distill"] and saved["outputs"]["checkpoint"] == "x.pt"
