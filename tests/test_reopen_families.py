"""Families that failed end to end before (issue 26), the way a user runs them: a uniform channel ratio
by glob (`"*" = 0.3`), prune, export, reopen the export; the reopened model gives the pruned model's
outputs and keeps the 10 classes. Grouped convs (RegNet), a channel shuffle (ShuffleNet: what it
cannot map is left whole), auxiliary heads (GoogLeNet, pruned with their trunk)."""

import pytest
import torch

from prunetui.core.outputs import logits_of
from prunetui.core.profile import Profile, save_profile
from prunetui.core.recipe import Outputs, Recipe
from prunetui.workflow.opening import Request, open_session
from prunetui.workflow.run import run_recipe
from prunetui.workflow.steps import say_nothing


def outputs(model, x):
    with torch.no_grad():
        return logits_of(model.eval()(x))


@pytest.mark.parametrize(
    ("name", "size", "refused"),
    [("regnet_x_400mf", 32, 1), ("shufflenet_v2_x0_5", 32, 7), ("googlenet", 64, 3)],
)
def test_a_uniform_channel_prune_reopens_to_the_same_outputs(tmp_path, name, size, refused):
    spec, data = f"torchvision:{name}:10", f"random:2:3x{size}x{size}"
    profile = save_profile(Profile("uniform", {"*": 0.3}, method="channel"), tmp_path / "u.toml")
    session = open_session(Request(model=spec, data=data, profile=str(profile)), tmp_path).session
    units = session.units()
    assert sum(not unit.prunable for unit in units) == refused  # classifiers (aux too), shuffles
    assert session.resolved.patterns[0].names == tuple(u.name for u in units if u.prunable)
    checkpoint = tmp_path / "pruned.pt"
    run_recipe(session, Recipe(plan=session.plan(), outputs=Outputs(checkpoint=str(checkpoint))), say_nothing)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    pruned = outputs(session.model, x)
    assert pruned.shape == (2, 10) and session.run_cost()["macs"] < session.run_cost()["macs_dense"]
    reopened = open_session(Request(model=spec, checkpoint=str(checkpoint), data=data), tmp_path).session
    torch.testing.assert_close(outputs(reopened.model, x), pruned, atol=1e-5, rtol=1e-4)
