"""The recipe's quantization part and outputs (issue 24): its rules in Recipe.check, its flags, the
profile's [bits] table."""

import pytest

from prunetui.cli import build_parser
from prunetui.cli_recipe import recipe
from prunetui.core.profile import load_profile, parse_profile, profile_toml
from prunetui.core.recipe import Outputs, Quantization, Recipe, RecipeError, recipe_from_dict
from prunetui.errors import UserError


def checked(**parts) -> Recipe:
    return Recipe(**parts).check()


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"quantization": Quantization("float4")}, "unknown quantization 'float4'"),
        ({"quantization": Quantization("kmeans", 9)}, "bits must be a whole number from 1 to 8, got 9"),
        ({"quantization": Quantization("kmeans", None, {"fc.weight": 0})}, "from 1 to 8, got 0"),
        ({"quantization": Quantization("kmeans", True)}, "got True"),
        ({"quantization": Quantization(None, 4)}, "bits are for k-means"),
        ({"quantization": Quantization("int8", 4)}, "bits are for k-means"),
        ({"quantization": Quantization("int8", epochs=2)}, "centroid finetune moves k-means centroids"),
        ({"quantization": Quantization("kmeans", epochs=-1)}, "centroid finetune: epochs"),
        ({"outputs": Outputs(compress=True)}, "compression writes the checkpoint file"),
        ({"outputs": Outputs("m.onnx", "m.onnx")}, "two outputs name the same file"),
    ],
)
def test_rules(parts, message):
    with pytest.raises(RecipeError, match=message):
        checked(**parts)


def test_valid_parts_and_versioned_round_trip():
    built = checked(
        quantization=Quantization("kmeans", 5, {"fc.weight": 3}, epochs=2),
        outputs=Outputs("m.ptz", compress=True, onnx_int8="m.int8.onnx"),
    )
    checked(quantization=Quantization("int8", 8))
    data = built.as_dict()
    assert data["version"] == 2 and recipe_from_dict(data) == built
    old = {k: v for k, v in data.items() if k != "quantization"} | {"version": 1}
    old["outputs"] = {"checkpoint": None, "onnx": None, "overwrite": False}
    assert recipe_from_dict(old).quantization == Quantization()


def prune_args(*flags):
    return build_parser().parse_args(["prune", "--profile", "p.toml", *flags])


def test_flags_read_into_the_recipe():
    assert recipe(prune_args("--bits", "4")).quantization == Quantization("kmeans", 4)
    assert recipe(prune_args("--centroid-finetune", "2")).quantization.kind == "kmeans"
    assert recipe(prune_args("--out", "m.ptz")).outputs.compress  # the suffix says it
    assert not recipe(prune_args("--out", "m.pt")).outputs.compress
    made = recipe(prune_args("--quantize", "int8", "--onnx-int8", "m.onnx"))
    assert made.quantization.kind == "int8" and made.outputs.onnx_int8 == "m.onnx"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--quantize", "int8", "--centroid-finetune", "2"], r"\(--centroid-finetune\)$"),
        (["--compress"], r"\(--compress\)$"),
        (["--quantize", "int8", "--bits", "4"], r"\(--bits\)$"),
    ],
)
def test_refusals_name_the_flag(flags, message):
    with pytest.raises(RecipeError, match=message):
        recipe(prune_args(*flags))


def test_profile_bits_table(tmp_path):
    text = 'name = "q"\n[sparsity]\n"fc.weight" = 0.9\n[bits]\n"fc.weight" = 5\nconv.weight = 8\n'
    profile = parse_profile(text)
    assert profile.bits == {"fc.weight": 5, "conv.weight": 8}
    path = tmp_path / "q.toml"
    path.write_text(profile_toml(profile))
    assert load_profile(path).bits == profile.bits
    with pytest.raises(UserError, match=r"bits of fc\.weight must be a whole number from 1 to 8, got 0\.5"):
        parse_profile('[sparsity]\n[bits]\n"fc.weight" = 0.5\n')
