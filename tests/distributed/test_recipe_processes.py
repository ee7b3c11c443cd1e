"""The recipe matrix over two processes (torchrun, gloo): every method with recovery options that cover
each of them, a finetune that rebuilds the model in every process (channel stages replayed from the
spec, the teacher as opened) and an export that reopens. One per method: each start of torchrun takes
seconds; tests/test_recipe_matrix.py runs every combination in one process."""

import pytest
from conftest import run_json

TARGETS = {"backbone.conv1.weight": 0.5, "backbone.conv3.weight": 0.6}
CASES = [
    ("magnitude", ["--schedule", "agp", "--recalibrate-bn"]),
    ("taylor", ["--distill"]),
    ("channel", ["--distill", "--recalibrate-bn"]),
]


@pytest.mark.parametrize("method, flags", CASES)
def test_two_processes_run_every_method(capsys, tmp_path, monkeypatch, digits160, method, flags):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on two shared cores
    lines = "".join(f'"{name}" = {value}\n' for name, value in TARGETS.items())
    (tmp_path / "p.toml").write_text(f'name = "p"\nmethod = "{method}"\n[sparsity]\n{lines}')
    argv = ["prune", "--data", digits160, "--profile", "p.toml", "--finetune", "1", "--nproc", "2", *flags]
    out, err = run_json(capsys, *argv, "--out", "x.pt")
    assert "1 epoch, lr 0.01" in err and "2 processes" in err
    assert out["method"] == method and len(out["epochs"]) == 1 and out["accuracy_after"] is not None
    assert (out["accuracy_recalibrated"] is not None) == ("--recalibrate-bn" in flags)
    reopened, _ = run_json(capsys, "info", "--data", digits160, "--checkpoint", "x.pt")
    assert reopened["sparse_size_mib"] == pytest.approx(out["sparse_size_mib"])
    [row] = [r for r in run_json(capsys, "runs", "--data", digits160)[0]["runs"] if r["kind"] == "finetune"]
    assert row["status"] == "finished" and row["recipe"]["processes"]["nproc"] == 2
