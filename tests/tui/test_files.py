"""Profiles (save, open, refuse) and checkpoint export, all under the working directory."""

from pathlib import Path

import torch

from prunetui.core.profile import Profile, load_profile, save_profile
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.confirm_dialog import ConfirmDialog
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.open_profile_dialog import OpenProfileDialog
from prunetui.tui.widgets.job_log import JobLog
from prunetui.tui.widgets.layer_table import LayerTable

from .conftest import MODEL_LABEL, TinyNet, make_app, wait_idle


async def save_as(pilot, profile_name: str) -> None:
    await pilot.press("ctrl+s")
    assert isinstance(pilot.app.screen, AskDialog)
    pilot.app.screen.query_one(ParsedInput).value = profile_name
    await pilot.press("enter")


async def test_profile_save_then_open_round_trip(app, tmp_path):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.8)
        app.workbench.set_target("conv3.weight", 0.6)
        await pilot.press("ctrl+s")
        assert app.screen.query_one(ParsedInput).value == "run1"  # the first free runN
        await pilot.press("enter")
        saved = load_profile(tmp_path / "profiles" / "run1.toml")
        assert saved.sparsity == {"conv2.weight": 0.8, "conv3.weight": 0.6}
        assert saved.model == MODEL_LABEL
        app.workbench.set_target("conv2.weight", 0.0)
        app.workbench.set_target("conv3.weight", 0.0)
        await pilot.press("o")
        assert isinstance(app.screen, OpenProfileDialog)
        await pilot.press("enter")  # the list has focus, run1 highlighted
        assert not isinstance(app.screen, OpenProfileDialog)
        assert app.workbench.session.targets["conv2.weight"] == 0.8 and app.workbench.session.targets["conv3.weight"] == 0.6
        assert str(app.query_one(LayerTable).get_cell("conv2.weight", "target")).strip() == "0.80"
        assert app.workbench.session.profile_name == "run1"


async def test_saving_over_an_existing_profile_asks_first(app, tmp_path):
    path = tmp_path / "profiles" / "mine.toml"
    save_profile(Profile("mine", {"fc.weight": 0.5}, model=MODEL_LABEL), path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.9)
        await save_as(pilot, "mine")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert load_profile(path).sparsity == {"fc.weight": 0.5}  # untouched
        await save_as(pilot, "mine")
        await pilot.press("y")
        assert load_profile(path).sparsity == {"conv2.weight": 0.9}


async def test_profile_names_must_make_good_file_names(app, tmp_path):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await save_as(pilot, "../escape")
        assert isinstance(app.screen, AskDialog)
        assert "letters, digits" in str(app.screen.query_one(".reason").render())
        await pilot.press("escape")
    assert not list(tmp_path.rglob("*.toml"))


async def test_a_profile_for_another_model_is_applied_with_the_clis_warning(app, tmp_path):
    """One rule in both front ends (workflow.policy): its layer names decide, the model name warns."""
    profiles = tmp_path / "profiles"
    save_profile(Profile("theirs", {"conv2.weight": 0.5}, model="vgg-cifar"), profiles / "theirs.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("o")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, OpenProfileDialog)
        assert app.workbench.session.targets["conv2.weight"] == 0.5
        assert "profile 'theirs' was made for vgg-cifar, not tiny" in app.query_one(JobLog).texts


async def test_a_glob_profile_sets_every_layer_it_matches_and_says_so(app, tmp_path):
    profiles = tmp_path / "profiles"
    save_profile(Profile("globs", {"*": 0.3, "conv[23].weight": 0.6}), profiles / "globs.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("o")
        await pilot.press("enter")
        await pilot.pause()
        assert app.workbench.session.targets == {
            "conv1.weight": 0.3, "conv2.weight": 0.6, "conv3.weight": 0.6, "fc.weight": 0.3
        }  # fmt: skip
        texts = app.query_one(JobLog).texts
        assert "Opened profile globs: 4 layers with a target" in texts
        assert '  "*" = 0.3 -> 2 layers (2 set by more specific keys)' in texts


async def test_a_profile_with_unknown_layers_is_refused(app, tmp_path):
    profiles = tmp_path / "profiles"
    save_profile(Profile("typo", {"conv9.weight": 0.5}, model=MODEL_LABEL), profiles / "typo.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("o")
        dialog = app.screen
        await pilot.press("enter")
        assert app.screen is dialog
        reason = str(dialog.query_one(".reason").render())
        assert "unknown layer conv9.weight" in reason and "conv" in reason.split("closest:")[1]
        await pilot.press("tab")
        dialog.query_one("Input").value = "missing"
        await pilot.press("enter")
        assert "profile not found" in str(dialog.query_one(".reason").render())
        await pilot.press("escape")
        assert not any(app.workbench.session.targets.values())


async def test_a_profile_given_at_start_is_applied(session, tmp_path):
    profile = Profile("start", {"conv3.weight": 0.7}, model=MODEL_LABEL)
    app = make_app(session, tmp_path, profile=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        assert app.workbench.session.targets["conv3.weight"] == 0.7
        assert str(app.query_one(LayerTable).get_cell("conv3.weight", "target")).strip() == "0.70"


async def export(pilot, path_text: str | None = None) -> None:
    await pilot.press("w")
    assert isinstance(pilot.app.screen, AskDialog)
    if path_text is not None:
        pilot.app.screen.query_one(ParsedInput).value = path_text
    await pilot.press("enter")


async def test_export_writes_a_checkpoint_plain_pytorch_loads(app, tmp_path):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        await export(pilot)
        await wait_idle(pilot)
        path = tmp_path / "tiny-custom.pt"
        checkpoint = torch.load(path, weights_only=True)
        model = TinyNet()
        model.load_state_dict(checkpoint["state_dict"])
        assert torch.equal(model.conv2.weight, app.workbench.session.model.conv2.weight)
        assert float((model.conv2.weight == 0).float().mean()) >= 0.9
        assert checkpoint["prunetui"]["model"] == MODEL_LABEL
        assert any(line.startswith(f"Exported {path} (") for line in app.query_one("JobLog").texts)


async def test_export_never_overwrites_without_asking(app, tmp_path):
    path = tmp_path / "out" / "model.pt"
    path.parent.mkdir()
    path.write_bytes(b"keep me")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await export(pilot, "out/model.pt")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await wait_idle(pilot)
        assert path.read_bytes() == b"keep me"
        await export(pilot, "out/model.pt")
        await pilot.press("y")
        await wait_idle(pilot)
        assert "state_dict" in torch.load(path, weights_only=True)
    assert sorted(p.name for p in Path(tmp_path, "out").iterdir()) == ["model.pt", "model.pt.toml"]
