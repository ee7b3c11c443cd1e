"""The int8 ONNX model (issue 24): static quantization calibrated on training images, agreeing with
PyTorch within a stated tolerance on the demo, timed against fp32 ONNX (no timing is asserted)."""

import os
from pathlib import Path

import pytest
from conftest import run_json

from prunetui.core.onnx_int8 import LatencyPair
from prunetui.errors import UserError
from prunetui.workflow import quantizing
from prunetui.workflow.opening import Request, open_session

# int8 weights and activations on the trained demo (450 digits): top-1 agrees with PyTorch on at least
# AGREEMENT % of the images and each logit is within LOGIT_TOLERANCE of PyTorch's (its logits reach ~20)
AGREEMENT, LOGIT_TOLERANCE = 97.0, 0.5
GENTLE = str(Path(__file__).resolve().parent.parent / "profiles" / "demo-gentle.toml")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("prunetui.core.onnx_int8.ROUNDS", 1)


def test_int8_agrees_with_pytorch_and_is_timed_against_fp32(capsys):
    doc, err = run_json(capsys, "prune", "--profile", GENTLE, "--onnx-int8", "m.onnx")
    int8 = doc["onnx_int8"]
    assert doc["bytes_on_disk"] == {"m.onnx": os.path.getsize("m.onnx")}
    assert int8["images"] == 450 and int8["agreement"] >= AGREEMENT
    assert int8["max_difference"] <= LOGIT_TOLERANCE
    assert abs(int8["accuracy_int8"] - int8["accuracy_pytorch"]) <= 100 - AGREEMENT
    assert int8["accuracy_pytorch"] == pytest.approx(doc["accuracy_before"])
    assert [pair["batch"] for pair in int8["latency"]] == [1, 64]
    assert "Latency at batch 64: int8" in err


def test_a_verdict_only_outside_the_spread():
    assert LatencyPair(1, 1.0, 0.5, (1.8, 2.1, 2.0), 1).verdict == "faster"
    assert LatencyPair(1, 1.0, 1.2, (0.8, 0.9, 0.85), 1).verdict == "slower"
    assert LatencyPair(1, 1.0, 1.0, (0.9, 1.1, 1.0), 1).verdict == "same"


def test_int8_needs_data_before_any_work():
    session = open_session(Request()).session
    session.data = None
    with pytest.raises(UserError, match="calibrated on training images"):
        quantizing.export_int8(session, "m.onnx", False, lambda *_: None)
    assert not os.path.exists("m.onnx")
