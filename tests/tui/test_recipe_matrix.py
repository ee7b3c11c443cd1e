"""Every combination composes in the workbench (issue 21): method (M) x schedule x distillation (the
finetune dialog) x BN recalibration (B), each pruned and finetuned by `f` and recorded with what ran;
channel with AGP refused in the dialog with the reason, nothing started. Fine-grained methods then prune
further (P). The demo with its shipped weights on 128 real digits images."""

import itertools

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.runs import RunStore
from prunetui.core.session import Origin, Session, Splits
from prunetui.sources import load_data, load_model
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.finetune_dialog import FinetuneDialog

from .conftest import make_app, wait_idle, wait_until

TARGETS = {"backbone.conv1.weight": 0.5, "backbone.conv3.weight": 0.6}
METHODS = ("magnitude", "taylor", "channel")
CELLS = list(itertools.product(METHODS, ("oneshot", "agp"), (False, True), (False, True)))


@pytest.fixture(scope="module")
def digits() -> TensorDataset:
    images, labels = load_data("digits").train.dataset.tensors
    return TensorDataset(images[:128].clone(), labels[:128].clone())


def demo_session(digits: TensorDataset, workdir) -> Session:
    model, label = load_model("demo")
    train = DataLoader(digits, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    splits = Splits(train, DataLoader(digits, batch_size=64))
    return Session(model, splits, label, Origin(data_spec="digits128"), RunStore(workdir))


async def fill_and_start(pilot, app, schedule: str, distill: bool) -> FinetuneDialog:
    await pilot.press("f")
    await wait_until(pilot, lambda: isinstance(app.screen, FinetuneDialog))
    dialog = app.screen
    for field, value in (("#epochs", "1"), ("#schedule", schedule), ("#distill", "y" if distill else "n")):
        dialog.query_one(field, ParsedInput).value = value
    await pilot.press("enter")
    return dialog


@pytest.mark.parametrize("method, schedule, distill, recalibrate", CELLS)
async def test_every_combination_from_the_keys(tmp_path, digits, method, schedule, distill, recalibrate):
    session = demo_session(digits, tmp_path)
    app = make_app(session, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        while app.workbench.method != method:
            await pilot.press("M")
            await wait_until(pilot, lambda: not app.workbench.busy)
        app.workbench.set_targets(TARGETS)
        if recalibrate:
            await pilot.press("B")
        dialog = await fill_and_start(pilot, app, schedule, distill)
        if method == "channel" and schedule == "agp":  # refused in the dialog, nothing started
            assert app.screen is dialog and "removes channels in one step" in str(
                dialog.query_one(".reason").render()
            )
            await pilot.press("escape")
            assert session.current_run is None and not session.runs()
            return
        await wait_idle(pilot)
        run = session.current_run
        assert run is not None and run.kind == "finetune" and run.status == "finished", app.query_one(
            "#job-log"
        ).texts
        recipe = run.recipe
        assert recipe["plan"]["method"] == method and recipe["recovery"]["schedule"] == schedule
        assert (
            recipe["recovery"]["distill"] == distill and recipe["recovery"]["recalibrate_bn"] == recalibrate
        )
        recalibrated = [
            r.accuracy_recalibrated for r in session.runs() if r.accuracy_recalibrated is not None
        ]
        assert bool(recalibrated) == recalibrate
        if method == "channel":
            assert session.state.channel_pruned and session.model.backbone.conv1.out_channels < 32
            return
        zeros = session.state.sparsity()
        assert all(zeros[name] >= target - 1e-3 for name, target in TARGETS.items())
        app.workbench.set_target("backbone.conv3.weight", 0.8)
        await pilot.press("P")  # prune further from the finetuned weights: sparsities only grow
        await wait_idle(pilot)
        further = session.current_run
        assert further.kind == "prune" and further.start == "current" and further.parent == run.id
        assert session.state.sparsity()["backbone.conv3.weight"] >= 0.8 - 1e-3
