"""`--method` on scan, prune and suggest; the method and the shared keys in every command's JSON."""

import json
from pathlib import Path

import pytest

from prunetui.cli import main

PROFILES = Path(__file__).parents[1] / "profiles"
GENTLE = str(PROFILES / "demo-gentle.toml")


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def run_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_prune_by_taylor_and_by_magnitude_same_size_different_weights(capsys):
    magnitude = run_json(capsys, "prune", "--profile", GENTLE)
    taylor = run_json(capsys, "prune", "--profile", GENTLE, "--method", "taylor")
    assert (magnitude["method"], taylor["method"]) == ("magnitude", "taylor")
    assert taylor["sparse_size_mib"] == magnitude["sparse_size_mib"]
    assert taylor["accuracy_before"] != magnitude["accuracy_before"]  # other weights were removed


def test_runs_rows_carry_the_keys_prune_uses(capsys):
    pruned = run_json(capsys, "prune", "--profile", GENTLE, "--method", "taylor")
    rows = run_json(capsys, "runs")["runs"]
    assert len(rows) == 1
    row = rows[0]
    assert row["method"] == "taylor"
    assert row["sparse_size_mib"] == pruned["sparse_size_mib"]
    assert row["percent_of_dense"] == pruned["percent_of_dense"]
    assert row["accuracy_before"] == pruned["accuracy_before"]
    assert "size_mib" not in row


def test_scan_json_names_its_method_and_the_two_methods_differ(capsys):
    args = ("scan", "--sparsities", "0.9", "--layers", "backbone.conv3.weight")
    magnitude = run_json(capsys, *args)
    taylor = run_json(capsys, *args, "--method", "taylor")
    assert (magnitude["method"], taylor["method"]) == ("magnitude", "taylor")
    assert not taylor["cached"]
    assert taylor["layers"] != magnitude["layers"]


def test_a_taylor_profile_prunes_by_taylor_and_the_flag_overrides_it(capsys, tmp_path):
    profile = tmp_path / "t.toml"
    profile.write_text(GENTLE_TEXT.replace('name = "demo-gentle"', 'name = "t"\nmethod = "taylor"'))
    assert run_json(capsys, "prune", "--profile", str(profile))["method"] == "taylor"
    assert main(["prune", "--profile", str(profile), "--method", "magnitude", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["method"] == "magnitude"
    assert "warning: profile 't' is a taylor profile; --method magnitude wins" in err


GENTLE_TEXT = Path(GENTLE).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('method = "hessian"\n[sparsity]\n"backbone.conv1.weight" = 0.5\n', "unknown method 'hessian'"),
        ('methd = "taylor"\n[sparsity]\n"backbone.conv1.weight" = 0.5\n', "unknown key methd"),
    ],
)
def test_profile_method_and_keys_are_checked(capsys, tmp_path, text, message):
    profile = tmp_path / "p.toml"
    profile.write_text(text)
    assert main(["prune", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_bad_method_flag_is_one_error_line(capsys):
    assert main(["scan", "--method", "hessian"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hessian" in err and len(err.splitlines()) == 1


def test_suggest_by_taylor(capsys):
    doc = run_json(capsys, "suggest", "--budget", "40%", "--sparsities", "0.5,0.9", "--method", "taylor")
    assert doc["method"] == "taylor" and doc["percent_of_dense"] <= 40.0
    assert doc["accuracy_before"] is not None
