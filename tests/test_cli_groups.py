"""`prunetui info --method channel` lists the groups a profile sets and why others cannot be pruned, and
a profile's globs resolve to groups (channel) or prunable tensors (fine-grained), one report line each."""

from conftest import run_json

from prunetui.cli import main

GROUP_KEYS = {"name", "channels", "members", "prunable", "reason"}


def profile(path, lines: str, method: str) -> str:
    path.write_text(f'name = "p"\nmethod = "{method}"\n[sparsity]\n{lines}')
    return str(path)


def test_info_lists_the_channel_groups(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, _ = run_json(capsys, "info", "--model", "vgg-cifar", "--method", "channel")
    groups = out["groups"]
    assert all(set(group) == GROUP_KEYS for group in groups)
    assert [g["name"] for g in groups if g["prunable"]] == [f"backbone.conv{i}.weight" for i in range(7)]
    assert groups[0]["channels"] == 64 and groups[0]["members"] == ["backbone.conv0.weight"]
    fixed = {g["name"]: g["reason"] for g in groups if not g["prunable"]}
    assert fixed["classifier.weight"].startswith("its outputs are the model's outputs")
    assert main(["info", "--model", "vgg-cifar", "--method", "channel"]) == 0
    text = capsys.readouterr().out
    assert "7 prunable channel groups" in text and "2 groups cannot be pruned:" in text
    assert "  backbone.conv7.weight: its outputs feed the classifier" in text


def test_a_uniform_channel_ratio_by_glob_is_the_labs_uniform_prune(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uniform = profile(tmp_path / "u.toml", '"*" = 0.3\n', "channel")
    out, err = run_json(capsys, "prune", "--model", "vgg-cifar", "--profile", uniform)
    assert (out["macs"], out["params"]) == (305388064, 5013666)  # the lab's conv0..6 at 0.3
    assert "note: profile 'p': \"*\" = 0.3 -> 7 groups (2 that cannot be pruned left at 0)" in err
    assert out["patterns"][0]["count"] == 7 and out["patterns"][0]["unprunable"] == [
        "backbone.conv7.weight",
        "classifier.weight",
    ]


def test_fine_grained_globs_match_prunable_tensors(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = '"*" = 0.5\n"backbone.conv[34].weight" = 0.8\n"classifier.weight" = 0\n'
    out, err = run_json(capsys, "info", "--profile", profile(tmp_path / "f.toml", lines, "magnitude"))
    assert out["targets"] == {
        "backbone.conv0.weight": 0.5,
        "backbone.conv1.weight": 0.5,
        "backbone.conv2.weight": 0.5,
        "backbone.conv3.weight": 0.8,
        "backbone.conv4.weight": 0.8,
    }
    assert '"*" = 0.5 -> 3 layers (3 set by more specific keys)' in err
    assert [p["pattern"] for p in out["patterns"]] == ["*", "backbone.conv[34].weight"]


def test_a_glob_that_matches_nothing_is_one_error_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = profile(tmp_path / "b.toml", '"features.*" = 0.3\n', "channel")
    assert main(["info", "--model", "vgg-cifar", "--profile", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile 'p': \"features.*\" matches no groups; closest: ")
    assert len(err.splitlines()) == 1
