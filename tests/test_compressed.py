"""The .ptz export (issue 24): exact round trip of the dequantized weights, reopened by --checkpoint and by
core/ptz.py alone, and bytes on disk equal to what the tool reports."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_json

from prunetui.cli import main
from prunetui.core.compressed import dense_file_bytes, ptz_bytes
from prunetui.core.ptz import PtzError, decode_positions, encode_positions, load_ptz
from prunetui.core.recipe import Quantization
from prunetui.errors import UserError
from prunetui.sources import load_data, open_model
from prunetui.workflow import quantizing
from prunetui.workflow.opening import Request, open_session

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
AGGRESSIVE = str(PROFILES / "demo-aggressive.toml")
PTZ_MODULE = Path(__file__).resolve().parent.parent / "prunetui" / "core" / "ptz.py"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def quantized_demo(kind: str, digits, bits: int | None = 4):
    """The demo pruned by demo-aggressive and quantized (no data: no finetune, fast)."""
    session = open_session(Request(profile=AGGRESSIVE, data="random:2:1x8x8")).session
    session.data = None
    session.prune()
    recipe = session.recipe(quantization=Quantization(kind, bits if kind == "kmeans" else None))
    quantizing.quantize(session, recipe, lambda *_: None)
    return session


def test_gaps_over_255_and_at_the_ends_round_trip():
    positions = np.array([0, 1, 256, 511, 511 + 255 + 1, 2000, 2999])
    data = encode_positions(positions)
    assert np.array_equal(decode_positions(data, 3000), positions)
    assert decode_positions(encode_positions(np.array([], dtype=np.int64)), 10).size == 0
    with pytest.raises(PtzError):
        decode_positions(data, 2999)  # the last position is outside a tensor of 2999


@pytest.mark.parametrize("kind", ["kmeans", "int8"])
def test_round_trip_is_exact_and_reopens_with_equal_outputs(kind, digits):
    session = quantized_demo(kind, digits)
    written = quantizing.export_compressed(session, "m.ptz", "aggressive", False, lambda *_: None)
    assert written.coded_layers == len(session.layer_names)
    state, info = load_ptz("m.ptz")
    expected = session.model.state_dict()
    assert list(state) == list(expected) and all(torch.equal(state[k], expected[k]) for k in expected)
    assert state._metadata == expected._metadata  # noqa: SLF001 - the state-dict metadata kept
    assert info["prunetui"]["quantization"]["kind"] == kind
    reopened = open_model("demo", "m.ptz").model
    images = next(iter(digits.eval))[0]
    with torch.inference_mode():
        assert torch.equal(reopened(images), session.model.eval()(images))


def test_bytes_on_disk_are_what_the_cli_reports(capsys):
    doc, err = run_json(capsys, "prune", "--profile", AGGRESSIVE, "--bits", "4", "--out", "m.ptz")
    size = os.path.getsize("m.ptz")
    assert doc["bytes_on_disk"] == {"m.ptz": size} and doc["written"] == {"checkpoint": "m.ptz"}
    assert doc["compression_ratio"] == doc["dense_file_bytes"] / size
    assert doc["quantization"]["bits"] == dict.fromkeys(doc["quantization"]["bits"], 4)
    assert f"m.ptz has {size:,} bytes" in err
    torch.save(open_model("demo").model.state_dict(), "dense.pt")  # the dense fp32 file, written
    assert doc["dense_file_bytes"] == os.path.getsize("dense.pt")
    runs, _ = run_json(capsys, "runs")
    assert runs["runs"][-1]["bytes_on_disk"] == {"m.ptz": size}
    assert runs["runs"][-1]["compression_ratio"] == doc["compression_ratio"]
    info, _ = run_json(capsys, "info", "--checkpoint", "m.ptz")
    assert info["sparse_size_mib"] == doc["sparse_size_mib"]


def test_a_checkpoint_export_reports_both_files(capsys):
    doc, _ = run_json(capsys, "prune", "--profile", AGGRESSIVE, "--out", "m.pt")
    assert doc["bytes_on_disk"] == {
        "m.pt": os.path.getsize("m.pt"),
        "m.pt.toml": os.path.getsize("m.pt.toml"),
    }
    assert doc["accuracy_quantized"] is None and doc["quantization"] is None


def test_dense_file_bytes_measures_torch_save(tmp_path):
    session = open_session(Request()).session
    torch.save(session.model.state_dict(), "dense.pt")
    assert dense_file_bytes(session.state) == os.path.getsize("dense.pt")


def test_the_loader_runs_alone_and_a_damaged_file_is_one_line(digits):
    session = quantized_demo("kmeans", digits)
    quantizing.export_compressed(session, "m.ptz", "x", False, lambda *_: None)
    script = (
        "import importlib.util, sys, torch\n"
        f"spec = importlib.util.spec_from_file_location('ptz', {str(PTZ_MODULE)!r})\n"
        "ptz = importlib.util.module_from_spec(spec); spec.loader.exec_module(ptz)\n"
        "state, info = ptz.load_ptz('m.ptz')\n"
        "assert not [m for m in sys.modules if m.startswith('prunetui')]\n"
        "print(sum(int((v != 0).sum()) for v in state.values()))\n"
    )
    nonzeros = sum(int((v != 0).sum()) for v in session.model.state_dict().values())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(done.stdout) == nonzeros
    data = Path("m.ptz").read_bytes()
    Path("bad.ptz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"^cannot read checkpoint bad\.ptz"):
        open_model("demo", "bad.ptz")


def test_bits_of_an_unknown_layer_are_one_error_line(capsys, tmp_path):
    profile = tmp_path / "bad.toml"
    profile.write_text('[sparsity]\n"backbone.conv1.weight" = 0.5\n[bits]\n"backbone.conv9.weight" = 4\n')
    assert main(["prune", "--profile", str(profile), "--out", "m.ptz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile 'bad' [bits]: unknown layer backbone.conv9.weight; closest:")
    assert not os.path.exists("m.ptz")


def test_tensors_of_other_dtypes_round_trip_as_they_are():
    state = {"w": torch.randn(4, 5), "b16": torch.randn(3, 4).bfloat16(), "h": torch.randn(2).half(),
             "count": torch.tensor(7), "empty": torch.zeros(0, 3)}  # fmt: skip
    Path("x.ptz").write_bytes(ptz_bytes({"state_dict": state, "prunetui": {"model": "x"}}, {}))
    loaded, info = load_ptz("x.ptz")
    assert all(torch.equal(loaded[k], v) and loaded[k].dtype == v.dtype for k, v in state.items())
    assert info == {"prunetui": {"model": "x"}}
