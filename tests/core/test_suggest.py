import pytest

from prunetui.core.suggest import (
    ScanTable,
    drop_at,
    suggest_for_budget,
    suggest_for_max_drop,
    suggest_per_layer_drop,
)
from prunetui.errors import UserError

GRID = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
BASE = 90.0
PARAMS = {"small.weight": 1_000, "big_robust.weight": 100_000, "big_fragile.weight": 100_000}
CURVES = {
    "small.weight": [89.9, 89.8, 89.5, 89.0, 88.0, 85.0],
    "big_robust.weight": [90.0, 90.0, 89.9, 89.8, 89.5, 88.0],
    "big_fragile.weight": [88.0, 85.0, 80.0, 70.0, 50.0, 20.0],
}


def kept(name: str, sparsity: float) -> int:
    return PARAMS[name] - round(PARAMS[name] * sparsity)


TABLE = ScanTable(GRID, BASE, CURVES, list(PARAMS), kept)


def kept_mib(targets: dict[str, float]) -> float:
    """Stand-in for the exact projection: kept weights x 32 bit."""
    return sum(n - round(n * targets.get(name, 0.0)) for name, n in PARAMS.items()) * 32 / 2**23


def test_drop_is_interpolated_and_starts_at_zero():
    curve = CURVES["big_fragile.weight"]
    assert drop_at(0.0, GRID, curve, BASE) == 0.0
    assert drop_at(0.2, GRID, curve, BASE) == pytest.approx(1.0)  # halfway to the 2-point drop at 0.4
    assert drop_at(0.55, GRID, curve, BASE) == pytest.approx(7.5)
    with pytest.raises(ValueError):
        drop_at(0.95, GRID, curve, BASE)


@pytest.mark.parametrize("percent", [90, 60, 52, 40])
def test_budget_is_met_and_spent_where_it_costs_least(percent):
    budget = kept_mib({}) * percent / 100
    proposal = suggest_for_budget(TABLE, budget, kept_mib)
    assert proposal.size_mib <= budget
    assert proposal.size_mib == kept_mib(proposal.targets)
    t = proposal.targets
    assert t["big_robust.weight"] >= t["big_fragile.weight"]  # insensitive large layer goes first
    assert t["big_robust.weight"] >= t["small.weight"]  # large before small at similar sensitivity
    predicted_drop = sum(drop_at(t[n], GRID, CURVES[n], BASE) for n in PARAMS)
    assert proposal.predicted_accuracy == pytest.approx(BASE - predicted_drop)


def test_budget_beats_uniform_on_predicted_accuracy():
    budget = kept_mib({}) * 0.4
    proposal = suggest_for_budget(TABLE, budget, kept_mib)
    uniform = next(s for s in GRID if kept_mib(dict.fromkeys(PARAMS, s)) <= budget)
    uniform_drop = sum(drop_at(uniform, GRID, CURVES[n], BASE) for n in PARAMS)
    assert proposal.predicted_accuracy > BASE - uniform_drop


def test_locked_layers_keep_their_targets():
    budget = kept_mib({}) * 0.6
    proposal = suggest_for_budget(TABLE, budget, kept_mib, locked={"big_robust.weight": 0.3})
    assert proposal.targets["big_robust.weight"] == 0.3
    assert proposal.size_mib <= budget


def test_impossible_budget_is_a_clear_error():
    with pytest.raises(UserError, match="cannot reach"):
        suggest_for_budget(TABLE, kept_mib({}) * 0.05, kept_mib)  # 0.9 everywhere keeps 10%


def test_missing_scan_is_a_clear_error():
    table = ScanTable(GRID, BASE, {"small.weight": CURVES["small.weight"]}, list(PARAMS), kept)
    with pytest.raises(UserError, match="no scan for big_robust.weight"):
        suggest_for_budget(table, 0.1, kept_mib)


@pytest.mark.parametrize("max_drop", [0.0, 0.5, 2.0, 10.0])
def test_max_drop_overall_is_respected_and_uses_it(max_drop):
    proposal = suggest_for_max_drop(TABLE, max_drop, kept_mib)
    assert BASE - proposal.predicted_accuracy <= max_drop + 1e-9
    looser = suggest_for_max_drop(TABLE, max_drop + 3.0, kept_mib)
    assert looser.size_mib <= proposal.size_mib


def test_max_drop_per_layer():
    proposal = suggest_per_layer_drop(TABLE, 1.0, kept_mib)
    assert proposal.targets == {"small.weight": 0.7, "big_robust.weight": 0.8, "big_fragile.weight": 0.2}
    with pytest.raises(UserError, match="0 or more"):
        suggest_for_max_drop(TABLE, -1.0, kept_mib)
