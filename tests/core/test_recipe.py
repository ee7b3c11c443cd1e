"""The recipe: every cross-option rule in one check (one line, the fields at fault), a versioned round trip,
and the one scan-grid parser both front ends use."""

import pytest

from prunetui.core.grid import parse_grid
from prunetui.core.recipe import (
    Finetune,
    Outputs,
    Plan,
    Processes,
    Recipe,
    RecipeError,
    Recovery,
    recipe_from_dict,
)

TARGETS = {"conv.weight": 0.5}


def recipe(method="magnitude", epochs=1, **recovery) -> Recipe:
    return Recipe(plan=Plan(method, TARGETS), recovery=Recovery(**recovery), finetune=Finetune(epochs=epochs))


@pytest.mark.parametrize(
    "bad, fields, words",
    [
        (
            recipe("channel", schedule="agp"),
            {"recovery.schedule", "plan.method"},
            "removes channels in one step",
        ),
        (recipe(epochs=0, schedule="agp"), {"recovery.schedule", "finetune.epochs"}, "needs finetune epochs"),
        (recipe(epochs=0, distill=True), {"recovery.distill", "finetune.epochs"}, "while finetuning"),
        (recipe(distill=True, alpha=1.5), {"recovery.alpha"}, "alpha must be in [0, 1]"),
        (recipe(temperature=0), {"recovery.temperature"}, "above 0"),
        (recipe(agp_share=0), {"recovery.agp_share"}, "(0, 1]"),
        (recipe(schedule="linear"), {"recovery.schedule"}, "oneshot or agp"),
        (Recipe(plan=Plan("channel", TARGETS), start="current"), {"start", "plan.method"}, "fine-grained"),
        (Recipe(plan=Plan("magnitude", {"a": 1.5})), {"plan.targets"}, "in [0, 1]"),
        (Recipe(plan=Plan("hessian", {})), {"plan.method"}, "unknown pruning method"),
        (Recipe(processes=Processes(2)), {"processes.nproc", "finetune.epochs"}, "need finetune epochs"),
        (
            Recipe(recovery=Recovery(schedule="agp"), finetune=Finetune(epochs=1)),
            {"recovery.schedule", "plan.targets"},
            "targets above 0",
        ),
        (Recipe(finetune=Finetune(epochs=1, lr=0)), {"finetune.lr"}, "learning rate"),
        (Recipe(finetune=Finetune(epochs=1), processes=Processes(1, 2)), {"processes.endpoint"}, "HOST:PORT"),
    ],
)
def test_a_combination_that_cannot_work_is_one_line_naming_its_fields(bad, fields, words):
    with pytest.raises(RecipeError) as refused:
        bad.check()
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert fields <= set(refused.value.fields)


@pytest.mark.parametrize("method", ["magnitude", "taylor"])
def test_every_fine_grained_method_takes_every_recovery_option(method):
    for schedule in ("oneshot", "agp"):
        recipe(method, schedule=schedule, distill=True, recalibrate_bn=True).check()
    recipe("channel", distill=True, recalibrate_bn=True).check()


def test_a_recipe_round_trips_with_its_version_and_refuses_what_a_newer_one_wrote():
    original = Recipe(
        plan=Plan("taylor", TARGETS), start="current", recovery=Recovery(True, "agp", 0.6, True, 2.0, 0.5),
        finetune=Finetune(epochs=3, lr=0.05, amp="bf16"), processes=Processes(2, 2, "host:29500"),
        outputs=Outputs("x.pt", "x.onnx", True), name="run3", seed=7,
    )  # fmt: skip
    data = original.as_dict()
    assert data["version"] >= 1 and recipe_from_dict(data) == original
    with pytest.raises(RecipeError, match="newer"):
        recipe_from_dict({**data, "version": 99})
    with pytest.raises(RecipeError, match="unknown recipe keys in 'recovery': beta"):
        recipe_from_dict({**data, "recovery": {**data["recovery"], "beta": 1}})


def test_a_version_1_recipe_is_still_read():
    old = {"version": 1, "plan": {"method": "magnitude", "targets": TARGETS}, "finetune": {"epochs": 2}}
    assert recipe_from_dict(old).finetune.epochs == 2 and recipe_from_dict(old).plan.targets == TARGETS


@pytest.mark.parametrize(
    "text, grid",
    [
        ("0.9,0.4,0.4", [0.4, 0.9]),  # sorted, once each: the CLI and the workbench agreed on neither
        ("0.4:1.0:0.1", [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),  # the lab's np.arange
        ("0:1:0.02", [round(i * 0.02, 6) for i in range(50)]),  # 50 points: allowed in both now
        (" 0.5 , 0.75 ", [0.5, 0.75]),
    ],
)
def test_one_grid_parser(text, grid):
    assert parse_grid(text) == grid


@pytest.mark.parametrize("bad", ["", "0.5,x", "0:1:0", "1.5", "0:1:0.01"])
def test_a_bad_grid_says_why(bad):
    with pytest.raises(ValueError):
        parse_grid(bad)
