import os

import pytest

from prunetui.core.profile import Profile, check_layers, load_profile, parse_profile, save_profile
from prunetui.errors import UserError

NAMES = [f"backbone.conv{i}.weight" for i in range(8)] + ["classifier.weight"]


def test_round_trip(tmp_path):
    profile = Profile(
        "run4", {"backbone.conv3.weight": 0.8, "backbone.conv7.weight": 0.95}, "vgg-cifar", "hard"
    )
    path = save_profile(profile, tmp_path / "run4.toml")
    assert load_profile(path) == profile
    assert [p.name for p in tmp_path.iterdir()] == ["run4.toml"]  # no temp file left behind


def test_product_example_parses():
    text = """
name = "run4"
model = "vgg-cifar"
description = "later layers hard, early layers dense"
[sparsity]
"backbone.conv3.weight" = 0.80
"backbone.conv7.weight" = 1
"""
    profile = parse_profile(text)
    assert profile.sparsity == {"backbone.conv3.weight": 0.8, "backbone.conv7.weight": 1.0}
    assert profile.model == "vgg-cifar"


def test_unquoted_dotted_keys_are_flattened():
    profile = parse_profile("[sparsity]\nbackbone.conv3.weight = 0.5\nclassifier.weight = 0.1\n")
    assert profile.sparsity == {"backbone.conv3.weight": 0.5, "classifier.weight": 0.1}


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[sparsity]\n"a.weight" = 0.5\n')
    assert load_profile(path).name == "mine"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('"a.weight" = "0.5"', "must be a number"),
        ('"a.weight" = true', "must be a number"),
        ('"a.weight" = nan', "must be in [0, 1]"),
        ('"a.weight" = inf', "must be in [0, 1]"),
        ('"a.weight" = -0.1', "must be in [0, 1]"),
        ('"a.weight" = 1.01', "must be in [0, 1]"),
        ('"a.weight" = [0.5]', "must be a number"),
    ],
)
def test_bad_values_are_rejected(body, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_profile(f"[sparsity]\n{body}\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[sparsity\\] table"),
        ("name = 'x'\n", "no \\[sparsity\\] table"),
        ("sparsity = 3\n", "must be a table"),
        ("[sparsity\n", "not valid TOML"),
        ("name = 3\n[sparsity]\n", "'name' must be a string"),
    ],
)
def test_malformed_profiles_are_rejected(text, message):
    with pytest.raises(UserError, match=message):
        parse_profile(text)


def test_unknown_layer_names_suggest_the_closest():
    profile = Profile("x", {"backbone.conv3.weigth": 0.5})
    with pytest.raises(
        UserError, match=r"unknown layer backbone.conv3.weigth; closest: backbone.conv3.weight"
    ):
        check_layers(profile, NAMES)
    check_layers(Profile("ok", {"classifier.weight": 0.5}), NAMES)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="profile not found"):
        load_profile(tmp_path / "nope.toml")
    with pytest.raises(UserError, match="not a file"):
        load_profile(tmp_path)


def test_save_never_overwrites_silently(tmp_path):
    path = tmp_path / "p.toml"
    save_profile(Profile("a", {"x.weight": 0.5}), path)
    with pytest.raises(UserError, match="exists"):
        save_profile(Profile("b", {"x.weight": 0.9}), path)
    assert load_profile(path).name == "a"
    save_profile(Profile("b", {"x.weight": 0.9}), path, overwrite=True)
    assert load_profile(path).name == "b"


def test_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch):
    # tests run as root here, where chmod cannot make a folder read-only: simulate what the OS says
    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(UserError, match="cannot save profile .*Permission denied"):
        save_profile(Profile("a", {}), tmp_path / "p.toml")
    assert not (tmp_path / "p.toml").exists()


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "p.toml"
    save_profile(Profile("old", {"x.weight": 0.5}), path)

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(UserError, match="No space left"):
        save_profile(Profile("new", {}), path, overwrite=True)
    assert load_profile(path).name == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.toml"]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text,
        lambda text: "\ufeff" + text,  # a UTF-8 byte-order mark (Windows editors)
        lambda text: text.replace("\n", "\r\n"),  # CRLF line endings
        lambda text: "\ufeff" + text.replace("\n", "\r\n"),
    ],
)
def test_bom_and_crlf_read_as_the_same_profile(tmp_path, encode):
    text = 'name = "run4"\nmethod = "taylor"\n[sparsity]\n"backbone.conv3.weight" = 0.8\n'
    path = tmp_path / "p.toml"
    path.write_bytes(encode(text).encode("utf-8"))
    profile = load_profile(path)
    assert (profile.name, profile.method, profile.sparsity) == (
        "run4",
        "taylor",
        {"backbone.conv3.weight": 0.8},
    )


def test_unknown_top_level_keys_are_named():
    with pytest.raises(UserError, match="unknown keys mehtod, sparsities"):
        parse_profile('mehtod = "taylor"\nsparsities = 1\n[sparsity]\n"a.weight" = 0.5\n')


def test_method_defaults_to_magnitude_and_unknown_methods_are_refused():
    assert parse_profile('[sparsity]\n"a.weight" = 0.5\n').method == "magnitude"
    assert parse_profile('method = "channel"\n[sparsity]\n"a.weight" = 0.5\n').method == "channel"
    with pytest.raises(UserError, match="unknown method 'hessian'"):
        parse_profile('method = "hessian"\n[sparsity]\n"a.weight" = 0.5\n')
