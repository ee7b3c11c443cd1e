"""Issue 16 in the workbench: b recalibrates the model as it is, B recalibrates after every prune, the
finetune dialog offers the AGP schedule and distillation."""

import torch
from torch import nn

from prunetui.core.session import Session
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.finetune_dialog import FinetuneDialog

from .conftest import make_app, tiny_splits, wait_idle
from .test_jobs import log_lines

TARGETS = {"0.weight": 0.5, "3.weight": 0.8, "7.weight": 0.6}


def bn_session() -> Session:
    """A tiny CNN with a BatchNorm (the shared TinyNet has none)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    )  # fmt: skip
    return Session(model, tiny_splits(), label="tiny-bn")


def recalibrated_lines(app) -> list[str]:
    return [line for line in log_lines(app) if line.endswith("after BN recalibration")]


async def test_b_recalibrates_and_B_recalibrates_after_each_prune(tmp_path):
    app = make_app(bn_session(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("b")  # nothing pruned: a warning, no job
        await wait_idle(pilot)
        assert not recalibrated_lines(app)
        app.workbench.set_targets(TARGETS)
        await pilot.press("p")
        await wait_idle(pilot)
        assert not recalibrated_lines(app)  # off by default: the lab's numbers
        await pilot.press("b")
        await wait_idle(pilot)
        run = app.workbench.session.current_run
        assert run.accuracy_recalibrated is not None
        assert recalibrated_lines(app)[-1] == (
            f"Sparse model has accuracy={run.accuracy_recalibrated:.2f}% after BN recalibration"
        )
        await pilot.press("B", "p")
        await wait_idle(pilot)
        assert app.workbench.session.current_run.id != run.id and len(recalibrated_lines(app)) == 2
        assert app.workbench.session.current_run.accuracy_recalibrated is not None


async def test_the_finetune_dialog_runs_agp_with_distillation_to_the_exact_targets(tmp_path):
    app = make_app(bn_session(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_targets(TARGETS)
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, FinetuneDialog)
        dialog.query_one("#epochs", ParsedInput).value = "2"
        dialog.query_one("#schedule", ParsedInput).value = "agp"
        dialog.query_one("#distill", ParsedInput).value = "y"
        await pilot.press("enter")
        await wait_idle(pilot)
        session = app.workbench.session
        run = session.current_run
        assert run.kind == "finetune" and run.schedule == "agp" and run.distill is not None
        assert not any(
            line.startswith("Sparse model has accuracy") and "before" in line for line in log_lines(app)
        )
        for name, target in TARGETS.items():
            n = session.state.opened[name].numel()
            assert abs(session.state.sparsity()[name] - round(n * target) / n) < 1e-9


async def test_a_bad_schedule_says_why(tmp_path):
    app = make_app(bn_session(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_targets(TARGETS)
        await pilot.press("f")
        app.screen.query_one("#schedule", ParsedInput).value = "linear"
        await pilot.press("enter")
        assert isinstance(app.screen, FinetuneDialog)
        assert "oneshot" in str(app.screen.query_one(".reason").render())
