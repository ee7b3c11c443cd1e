"""`suggest --speedup`: the planner on a session (workflow.planning) with an injected timer, and the
command line's flags and JSON on the demo with a tiny measuring effort."""

import json
from dataclasses import replace

import pytest
import torch
from conftest import run_json, tiny_splits
from fake_timers import NarrowedSlower, StructureTimer
from torch import nn

from prunetui.cli import main
from prunetui.core.session import Session
from prunetui.workflow import planning
from prunetui.workflow.goals import parse_goal
from prunetui.workflow.planning import Effort, SpeedupRequest, plan_speedup, planned_json
from prunetui.workflow.steps import say_nothing

X = torch.zeros(1, 1, 8, 8)
TINY = Effort(fractions=(0.75, 0.5, 0.25), table_run_time=0.001, sweeps=1, measure_run_time=0.001,
              measure_rounds=1, rounds=3, keep=2, check_profiles=2)  # fmt: skip
PLANNED_KEYS = {
    "speedup", "speedup_spread", "accuracy_search", "accuracy_heldout", "standard_error_search",
    "standard_error_heldout", "latency_model_error", "reached", "reason", "targets", "widths", "goal",
}  # fmt: skip


def chain_session() -> Session:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 12, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 4),
    )  # fmt: skip
    return Session(model, tiny_splits(n=64))


def plan(session: Session, goal: str, timer, batches=(1, 8)):
    request = SpeedupRequest(parse_goal(goal, 1.0), batches)
    return plan_speedup(session, request, say_nothing, effort=TINY, timer=timer)


def test_the_plan_reaches_the_goal_by_measurement_and_avoids_a_slow_width():
    """Width 8 of the 16-channel groups costs 20x (off the fast kernels): the plan that took it narrows
    to other widths instead, and reaches the goal measured whole at both batches."""
    assert 8 in plan(chain_session(), "1.6x", StructureTimer(X)).best.widths.values()
    session = chain_session()
    before = session.state.fingerprint()
    planned = plan(session, "1.6x", StructureTimer(X, slow=8, penalty=20.0))
    assert planned.search.reached and planned.best is not None
    assert all(ratio >= 1.6 for ratio in (s.ratio for s in planned.speedup.values()))
    assert 8 not in planned.best.widths.values()
    doc = planned_json(planned)
    assert set(doc) >= PLANNED_KEYS and set(doc["speedup"]) == {"1", "8"}
    assert doc["search_images"] + doc["heldout_images"] == 64 and doc["heldout_images"] == 32
    assert doc["accuracy_heldout"] is not None and doc["standard_error_heldout"] > 0
    assert set(doc["latency_model_error"]) == {"1", "8"} and doc["latency_model_checks"] >= 3
    assert session.state.fingerprint() == before and not any(session.targets.values())  # left as it was


def test_no_profile_is_returned_when_every_width_measures_slower():
    """Every narrowed model is slower (the whole-profile case of a table that looked faster is core.planner's
    test): nothing is returned, and the reason says what the narrowest widths measure, and why."""
    session = chain_session()
    planned = plan(session, "1.3x", NarrowedSlower(X, session.state.base))
    assert planned.best is None and planned.targets == {}
    assert planned.search.candidates and all(c.slower for c in planned.search.candidates)
    doc = planned_json(planned)
    assert doc["speedup"] == {} and doc["reached"] is False and doc["accuracy_heldout"] is None
    assert "narrowest width" in doc["reason"] and "measures 0.80x" in doc["reason"]
    assert "launch-bound" in doc["reason"]  # the narrowest measures no speed-up: said so, and why


def test_bad_requests_are_refused_before_any_work():
    session = chain_session()
    for goal, batches, error in (("1x", (1,), "above 1x"), ("2x", (0,), "positive")):
        with pytest.raises(Exception, match=error):
            planning.check_request(
                SpeedupRequest(replace(parse_goal("2x", 1.0), value=float(goal[0])), batches)
            )
    with pytest.raises(Exception, match="needs data"):
        plan(Session(session.state.base), "2x", StructureTimer(X))


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--speedup", "1x"], "above 1x"),
        (["--speedup", "fast"], "bad --speedup"),
        (["--speedup", "2x", "--batch", "0"], "positive whole numbers"),
        (["--speedup", "2x", "--global"], "--global goes with --budget or --max-drop"),
        (["--speedup", "2x", "--budget", "25%"], "not allowed with"),
        (["--speedup", "2x", "--method", "magnitude"], "plans channel widths"),
        (["--speedup", "2x", "--round-to", "0"], "--round-to must be 1 or more"),
        (["--budget", "25%", "--batch", "64"], "--batch go with --speedup"),
        (["--budget", "25%", "--max-drop", "1"], "two goals"),
        ([], "suggest needs a goal"),
    ],
)
def test_speedup_flags_are_checked_at_once(capsys, argv, error):
    assert main(["suggest", *argv]) == 2
    err = capsys.readouterr().err
    assert error in err and err.startswith("error:") and "Traceback" not in err


def test_cli_speedup_json_keys_and_never_slower(capsys, monkeypatch, tmp_path):
    """The demo on real digits with the real timer at a tiny effort: whatever the noise does, every
    speed-up returned is at least 1 at each batch asked for, and the keys are there."""
    monkeypatch.setattr(planning, "DEFAULT_EFFORT", TINY)
    doc, err = run_json(capsys, "suggest", "--speedup", "1.2x", "--batch", "1,4", "--threads", "1",
                        "--state-dir", str(tmp_path))  # fmt: skip
    assert set(doc) >= PLANNED_KEYS
    assert all(ratio >= 1.0 for ratio in doc["speedup"].values())
    if doc["speedup"]:
        assert set(doc["speedup"]) == {"1", "4"} and doc["run"] == 1 and doc["method"] == "channel"
        assert (
            doc["latency_ms"] > 0 and doc["latency_batch"] == 4 and doc["accuracy_recalibrated"] is not None
        )
    else:
        assert doc["reason"]
    assert list((tmp_path / "latency").glob("*.json")), "the latency model is cached in the state folder"
    assert "Latency model" in err


def test_prune_latency_batch_keeps_its_keys(capsys, tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('method = "channel"\n[sparsity]\n"backbone.conv1.weight" = 0.5\n')
    doc, _ = run_json(capsys, "prune", "--profile", str(profile), "--latency-batch", "4",
                      "--state-dir", str(tmp_path / "state"))  # fmt: skip
    for key in ("latency_ms_dense", "latency_ms", "latency_ms_dense_at_batch", "latency_ms_at_batch"):
        assert doc[key] > 0, key
    assert doc["latency_batch"] == 4
    json.dumps(doc)
