"""Profile keys as globs (core.patterns): an exact name over any glob, the most specific glob wins, a
glob that matches nothing (or only what cannot be pruned) is an error naming the closest units, and each
glob's report line says what it took."""

import pytest

from prunetui.core.methods.base import Unit
from prunetui.core.patterns import resolve, specificity
from prunetui.errors import UserError

UNITS = [
    Unit("layer1.0.conv1.weight", 64),
    Unit("layer3.0.conv1.weight", 256),
    Unit("layer3.0.conv2.weight", 256),
    Unit("layer3.1.conv1.weight", 256),
    Unit("fc.weight", 10, prunable=False, reason="its outputs are the model's outputs"),
]


def test_exact_over_glob_and_the_most_specific_glob_wins():
    resolved = resolve({"*": 0.3, "layer3.*": 0.5, "layer3.1.conv1.weight": 0.1}, UNITS, noun="groups")
    assert resolved.targets == {
        "layer3.1.conv1.weight": 0.1,
        "layer1.0.conv1.weight": 0.3,
        "layer3.0.conv1.weight": 0.5,
        "layer3.0.conv2.weight": 0.5,
    }
    everything, layer3 = resolved.patterns
    assert everything.names == ("layer1.0.conv1.weight",) and everything.unprunable == ("fc.weight",)
    assert everything.line("groups") == (
        '"*" = 0.3 -> 1 group (1 that cannot be pruned left at 0; 3 set by more specific keys)'
    )
    assert layer3.line("groups") == '"layer3.*" = 0.5 -> 2 groups (1 set by more specific keys)'
    assert layer3.as_json()["count"] == 2


def test_specificity_counts_literal_characters():
    assert (specificity("*"), specificity("layer3.*"), specificity("*.conv1.weight")) == (0, 7, 13)
    assert specificity("layer[34].?.conv1.weight") == 19
    resolved = resolve({"layer3.*": 0.5, "*.conv1.weight": 0.2}, UNITS)
    assert resolved.targets["layer3.0.conv1.weight"] == 0.2  # 13 literal characters beat 7
    assert resolved.targets["layer3.0.conv2.weight"] == 0.5


def test_a_glob_that_matches_nothing_names_the_closest_units():
    with pytest.raises(UserError, match=r'p: "layer9\.\*" matches no groups; closest: layer3\.1\.conv1'):
        resolve({"layer9.*": 0.5}, UNITS, "p: ", "groups")


def test_a_glob_of_only_unprunable_units_is_an_error_unless_it_sets_zero():
    with pytest.raises(
        UserError, match=r"matches only groups that cannot be pruned \(fc.weight: its outputs"
    ):
        resolve({"fc*": 0.5}, UNITS, noun="groups")
    assert resolve({"fc*": 0.0}, UNITS).targets == {}


def test_equally_specific_globs_that_disagree_are_an_error():
    with pytest.raises(UserError, match=r'"layer3\.\*" = 0\.5 and "\*\.weight" = 0\.2 are equally specific'):
        resolve({"layer3.*": 0.5, "*.weight": 0.2}, UNITS)
    assert resolve({"layer3.*": 0.5, "*.weight": 0.5}, UNITS).targets["layer3.0.conv1.weight"] == 0.5
