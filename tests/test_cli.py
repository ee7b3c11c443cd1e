"""The command line contract: JSON keys, stdout holding only JSON, exit codes, one error line."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_json

from prunetui.cli import main, parse_sparsities
from prunetui.errors import UserError
from prunetui.sources.vgg import VGG

ROOT = Path(__file__).parents[1]
PROFILES = ROOT / "profiles"
EPOCH_LINE = re.compile(r"^ *Epoch (\d+) Accuracy \d+\.\d\d% / Best Accuracy: \d+\.\d\d%$")


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Runs are recorded in the working directory: keep each test's apart."""
    monkeypatch.chdir(tmp_path)


def test_info_json(capsys):
    doc, _ = run_json(capsys, "info")
    assert set(doc) == {
        "model",
        "device",
        "method",
        "dense_size_mib",
        "sparse_size_mib",
        "percent_of_dense",
        "layers",
        "patterns",  # what a profile's globs took (none here)
        "targets",  # every layer with a target above 0 (none here)
    }
    assert doc["patterns"] == [] and doc["targets"] == {}
    assert doc["method"] == "magnitude"
    assert doc["model"] == "demo" and doc["device"] == "cpu"
    assert doc["percent_of_dense"] == pytest.approx(100.0)
    assert len(doc["layers"]) >= 6
    assert set(doc["layers"][0]) == {"name", "kind", "shape", "params", "zero_fraction", "target"}
    assert all(layer["target"] == 0.0 for layer in doc["layers"])  # dense model: no targets
    params = [layer["params"] for layer in doc["layers"]]
    assert max(params) >= 10 * min(params)


def test_scan_json_subset(capsys):
    layers = "backbone.conv1.weight,classifier.weight"
    doc, err = run_json(capsys, "scan", "--sparsities", "0.5,0.9", "--layers", layers)
    assert {"model", "sparsities", "dense_accuracy", "layers", "seconds"} <= set(doc)
    assert doc["sparsities"] == [0.5, 0.9]
    assert list(doc["layers"]) == layers.split(",")
    assert all(len(accuracies) == 2 for accuracies in doc["layers"].values())
    assert doc["dense_accuracy"] >= 97.0
    assert doc["layers"]["backbone.conv1.weight"][1] < doc["dense_accuracy"]  # 90% of conv1 hurts
    assert "Scan finished in" in err


def test_sparsity_grid_forms():
    assert parse_sparsities("0.4:1.0:0.1") == [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert parse_sparsities("0.5, 0.75") == [0.5, 0.75]
    for bad in ("0.4:1:0", "a,b", "1.5", "0.1:0.2", ""):
        with pytest.raises(UserError):
            parse_sparsities(bad)


def test_prune_finetune_keeps_masks_and_logs_epochs(capsys, tmp_path):
    out = tmp_path / "pruned.pt"
    profile = PROFILES / "demo-aggressive.toml"
    doc, err = run_json(capsys, "prune", "--profile", str(profile), "--finetune", "2", "--out", str(out))
    assert {
        "model", "profile", "method", "dense_size_mib", "sparse_size_mib", "percent_of_dense", "accuracy_dense",
        "accuracy_before", "accuracy_after", "epochs", "layers",
        "accuracy_recalibrated", "schedule", "distill",  # recovery options (issue 16)
    } <= set(doc)  # fmt: skip
    assert doc["accuracy_recalibrated"] is None and doc["schedule"] == "oneshot" and doc["distill"] is False
    epoch_lines = [line for line in err.splitlines() if EPOCH_LINE.match(line)]
    assert len(epoch_lines) == 2
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    assert doc["accuracy_after"] == max(e["accuracy"] for e in doc["epochs"])
    assert doc["accuracy_after"] > doc["accuracy_before"]
    saved = torch.load(out, weights_only=True)
    for layer in doc["layers"]:
        zeros = float((saved["state_dict"][layer["name"]] == 0).float().mean())
        assert zeros >= layer["target"] - 1e-3  # the masks held through finetuning
        assert layer["sparsity"] == pytest.approx(zeros)
    assert saved["prunetui"]["profile"] == "demo-aggressive"


def test_prune_vgg_lab_checkpoint_reports_the_blogs_sizes(capsys, tmp_path):
    torch.manual_seed(0)
    model = VGG()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)  # trained BN/bias values are nonzero
    checkpoint = tmp_path / "vgg.cifar.pretrained.pth"
    torch.save({"epoch": 200, "state_dict": model.state_dict()}, checkpoint)
    doc, _ = run_json(
        capsys, "prune", "--model", "vgg-cifar", "--checkpoint", str(checkpoint),
        "--profile", str(PROFILES / "vgg-cifar-run4.toml"),
    )  # fmt: skip
    assert f"{doc['dense_size_mib']:.2f}" == "35.20"
    assert f"{doc['sparse_size_mib']:.2f}" == "3.84"
    assert f"{doc['percent_of_dense']:.2f}" == "10.90"
    assert doc["accuracy_dense"] is None and doc["accuracy_after"] is None  # no --data given
    assert doc["profile"] == "run4"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prune", "--profile", str(PROFILES / "demo-gentle.toml"), "--finetune", "-1"], "--finetune"),
        (["prune", "--profile", str(PROFILES / "demo-gentle.toml"), "--lr", "0"], "--lr"),
        (["prune"], "needs --profile"),
        (["scan", "--sparsities", "0.4,x"], "--sparsities"),
        (["info", "--device", "gpu"], "bad device"),
        (["info", "--device", "cuda:7"], "cuda"),
        (["info", "--profile", "nope.toml"], "profile not found"),
        (["scan", "--layers", "backbone.conv9.weight"], "closest: backbone.conv"),
        (["scan", "--model", "vgg-cifar"], "needs --data"),
        (["info", "--model", "nonsense"], "unknown model spec"),
        (["info", "--data", "cifar10:/nowhere"], "cifar"),
        (["frobnicate"], "invalid choice"),
        (["resume", "3"], "no run of this model matches '3'"),
        (["info", "--data", "random:8:3x32x32"], "cannot take 3x32x32 images"),
        (["info", "--model", "torchvision:resnet18:5", "--data", "random:8:3x32x32"], "has 5 outputs"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert message in err


def test_out_never_overwrites_without_force(capsys, tmp_path):
    out = tmp_path / "x.pt"
    out.write_bytes(b"precious")
    argv = ["prune", "--profile", str(PROFILES / "demo-gentle.toml"), "--out", str(out)]
    assert main(argv) == 2
    assert out.read_bytes() == b"precious"
    assert main([*argv, "--force"]) == 0
    assert "state_dict" in torch.load(out, weights_only=True)


def test_internal_error_names_the_traceback_file(capsys, monkeypatch):
    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr("prunetui.commands.info", broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: internal error (RuntimeError: boom); full traceback in ")
    log = Path(err.strip().rsplit(" ", 1)[1])
    assert "Traceback" in log.read_text()
    log.unlink()


def test_module_entry_point_in_a_real_process(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "prunetui", "info", "--json"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["model"] == "demo"
    bad = subprocess.run(
        [sys.executable, "-m", "prunetui", "scan", "--finetune", "3"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_runs_lists_what_prune_and_finetune_recorded(capsys):
    profile = str(PROFILES / "demo-gentle.toml")
    assert main(["prune", "--profile", profile, "--finetune", "1"]) == 0
    assert "1 epoch, lr " in capsys.readouterr().out  # not "1 epochs"
    doc, _ = run_json(capsys, "runs")
    prune_run, finetune_run = doc["runs"]
    assert (prune_run["number"], finetune_run["number"]) == (1, 2)  # the # that `resume N` takes
    assert (prune_run["kind"], finetune_run["kind"]) == ("prune", "finetune")
    assert finetune_run["parent"] == prune_run["id"] and finetune_run["status"] == "finished"
    assert finetune_run["epochs"] == 1 and finetune_run["accuracy_after"] is not None
    assert prune_run["profile"]["backbone.conv4.weight"] == 0.7
    assert main(["runs"]) == 0
    assert "demo-gentle+ft1" in capsys.readouterr().out
    other, _ = run_json(capsys, "runs", "--model", "vgg-cifar")
    assert other["runs"] == []  # runs belong to the model they were made with


def test_export_reports_real_disk_sizes_and_writes_a_profile_side_file(capsys, tmp_path):
    out = tmp_path / "pruned.pt"
    profile = str(PROFILES / "demo-aggressive.toml")
    assert main(["prune", "--profile", profile, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    dense_mib, sparse_mib = (float(x) for x in re.findall(r"(\d+\.\d+) MiB as (?:saved|bitmask)", printed))
    assert sparse_mib < dense_mib * 0.5  # 84% of the weights are zero
    assert main(["info", "--profile", str(out) + ".toml"]) == 0  # the side file is a profile


def test_a_channel_export_reports_no_sparse_format(capsys, tmp_path):
    """A channel-pruned model holds no zeros to store sparse: its export says only what is saved."""
    profile = tmp_path / "p.toml"
    profile.write_text('method = "channel"\n[sparsity]\n"backbone.conv1.weight" = 0.5\n')
    assert main(["prune", "--profile", str(profile), "--out", str(tmp_path / "c.pt")]) == 0
    printed = capsys.readouterr().out
    assert "MiB as saved;" in printed and "bitmask" not in printed


def test_suggest_meets_a_25_percent_budget_and_beats_uniform(capsys, tmp_path):
    from prunetui.core.session import Session
    from prunetui.sources import load_data, load_model

    out = tmp_path / "suggested.toml"
    doc, err = run_json(
        capsys, "suggest", "--budget", "25%", "--sparsities", "0.4:1.0:0.1", "--out", str(out)
    )
    assert doc["percent_of_dense"] <= 25.0
    assert "predicted" in err and "measured" in err
    model, label = load_model("demo")
    session = Session(model, load_data("digits"), label)
    uniform = next(
        u / 100 for u in range(50, 100) if session.projected_size(dict.fromkeys(session.layer_names, u / 100))
        <= doc["sparse_size_mib"]
    )  # fmt: skip
    session.targets = dict.fromkeys(session.layer_names, uniform)
    session.prune()
    assert doc["accuracy_before"] > session.evaluate() + 10  # by a wide margin, not by noise
    assert main(["info", "--profile", str(out)]) == 0  # the written profile loads


def test_suggest_goal_errors(capsys):
    assert main(["suggest", "--budget", "0.001%"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert main(["suggest", "--budget", "abc"]) == 2
    assert main(["suggest", "--per-layer", "--budget", "20%"]) == 2
    assert main(["suggest"]) == 2


def test_sighup_during_finetune_leaves_a_resumable_run(tmp_path, capsys):
    """A closed SSH session sends SIGHUP: the epochs done so far must survive it."""
    import os
    import signal

    profile = str(PROFILES / "demo-gentle.toml")
    argv = [sys.executable, "-m", "prunetui", "prune", "--profile", profile, "--finetune", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env) as process:
        for line in process.stdout:
            if EPOCH_LINE.match(line):
                process.send_signal(signal.SIGHUP)
                break
        assert process.wait(timeout=60) == -signal.SIGHUP
    doc, _ = run_json(capsys, "runs")
    finetune_run = doc["runs"][-1]
    assert finetune_run["kind"] == "finetune" and finetune_run["status"] == "unfinished"
    assert finetune_run["epochs"] >= 1 and finetune_run["number"] == len(doc["runs"])
    assert main(["resume", str(finetune_run["number"]), "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["status"] == "finished" and resumed["epochs"] == 3
    assert resumed["number"] == finetune_run["number"] and resumed["id"] == finetune_run["id"]


def test_a_closed_pipe_is_not_an_internal_error():
    """`prunetui info --json | head -c 1`: the reader leaves early, nothing to report."""
    process = subprocess.Popen(
        [sys.executable, "-m", "prunetui", "info", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # like head exiting before prunetui writes
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""


def test_the_default_device_is_auto(monkeypatch):
    """On the GPU box the tool is made for, no flag means CUDA (here: no CUDA, so the CPU)."""
    import prunetui.workflow.opening as opening
    from prunetui.core.device import resolve_device

    asked = []
    monkeypatch.setattr(opening, "resolve_device", lambda spec: asked.append(spec) or resolve_device("cpu"))
    assert main(["info", "--json"]) == 0
    assert asked == ["auto"]
