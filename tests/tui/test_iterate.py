"""What you see is what runs (14.1), pruning further (14.6), runs you can tell apart (14.7) and the small
honesty fixes (14.8), driven by keys."""

import torch

from prunetui.core.runs import RunStore
from prunetui.core.suggest import Suggestion
from prunetui.tui.paths import default_export_path
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.choice_dialog import ChoiceDialog
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.screens.finetune_dialog import FinetuneDialog
from prunetui.tui.screens.open_profile_dialog import OpenProfileDialog
from prunetui.tui.screens.run_note_dialog import RunNoteDialog
from prunetui.tui.widgets.plots.runs_plot import shared_labels
from prunetui.tui.widgets.plots.runs_table import RunDetails, RunsTable
from prunetui.tui.widgets.status_line import StatusLine

from .conftest import wait_idle
from .test_jobs import log_lines


def zeros(app, name: str) -> torch.Tensor:
    return dict(app.workbench.session.model.named_parameters())[name].detach() == 0


async def prune_to(pilot, targets: dict[str, float], key: str = "p") -> None:
    pilot.app.workbench.set_targets(targets)
    await pilot.press(key)
    await wait_idle(pilot)


async def finetune_answering(pilot, answer: str | None, epochs: int = 1) -> None:
    """`f`, the targets-changed question answered with `answer` (None: not asked), then the epochs."""
    app = pilot.app
    await pilot.press("f")
    if answer is not None:
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press(answer)
    assert isinstance(app.screen, FinetuneDialog)
    app.screen.query_one("#epochs", ParsedInput).value = str(epochs)
    await pilot.press("enter")
    await wait_idle(pilot)


async def test_finetune_after_the_targets_changed_asks_and_acts_on_the_answer(recording_app):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await prune_to(pilot, {"conv2.weight": 0.5})
        await finetune_answering(pilot, None)  # targets as pruned: no question
        app.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("f")
        assert isinstance(app.screen, ChoiceDialog)
        assert "Prune to the targets first" in app.screen.question
        await pilot.press("escape")  # neither: nothing runs
        assert not isinstance(app.screen, ChoiceDialog) and not app.workbench.busy
        await finetune_answering(pilot, "n")  # the current masks, said so
        assert any(
            "Targets changed since the last prune: finetuning the masks of" in t for t in log_lines(app)
        )
        assert app.workbench.session.current_run.profile == {"conv2.weight": 0.5}
        assert abs(float(zeros(app, "conv2.weight").float().mean()) - 0.5) < 0.01
        await finetune_answering(pilot, "y")  # prune to what the screen shows, then finetune
        run = app.workbench.session.current_run
        assert run.kind == "finetune" and run.profile == {"conv2.weight": 0.8}
        assert abs(float(zeros(app, "conv2.weight").float().mean()) - 0.8) < 0.01
        assert not app.workbench.session.targets_changed()
        names = [r.name for r in RunStore(app.workdir).load_all()]
        assert names == ["custom", "custom+ft1", "custom+ft1+ft1", "custom", "custom+ft1"]


async def test_export_after_opening_a_profile_asks_and_says_what_it_writes(app, tmp_path):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_targets({"conv2.weight": 0.7, "conv3.weight": 0.9})  # as opening a profile does
        await pilot.press("w")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("n")  # the weights as they are
        assert isinstance(app.screen, AskDialog)
        assert app.screen.initial == "tiny-dense.pt"
        await pilot.press("enter")
        await wait_idle(pilot)
        assert any("the export writes the unpruned weights" in t for t in log_lines(app))
        assert torch.load(tmp_path / "tiny-dense.pt", weights_only=True)["prunetui"]["sparsity"] == {}
        await pilot.press("w", "y")  # prune first
        assert isinstance(app.screen, AskDialog)
        app.screen.query_one(ParsedInput).value = "pruned.pt"
        await pilot.press("enter")
        await wait_idle(pilot)
        written = torch.load(tmp_path / "pruned.pt", weights_only=True)["prunetui"]
        assert written["sparsity"] == {"conv2.weight": 0.7, "conv3.weight": 0.9}
        await pilot.press("w")  # nothing changed since: no question
        assert isinstance(app.screen, AskDialog)


async def test_P_prunes_further_from_the_finetuned_weights(recording_app):
    app = recording_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await prune_to(pilot, {"conv2.weight": 0.5})
        await finetune_answering(pilot, None)
        first = zeros(app, "conv2.weight").clone()
        parent = app.workbench.session.current_run
        await prune_to(pilot, {"conv2.weight": 0.8, "conv3.weight": 0.3}, key="P")
        now = zeros(app, "conv2.weight")
        assert bool((now | ~first).all()) and float(now.float().mean()) > 0.79
        run = app.workbench.session.current_run
        assert run.start == "current" and run.parent == parent.id
        assert any(
            t.startswith("Pruning further from the current weights (custom+ft1") for t in log_lines(app)
        )
        await finetune_answering(pilot, None)  # the targets are what the weights hold
        assert bool((zeros(app, "conv2.weight") | ~now).all())
        await prune_to(pilot, {"conv2.weight": 0.6}, key="p")  # from dense again
        assert abs(float(zeros(app, "conv2.weight").float().mean()) - 0.6) < 0.01
        assert app.workbench.session.current_run.start == "dense"
        assert "Pruning from the dense weights" in log_lines(app)
        await pilot.press("u")
        details = str(app.query_one(RunDetails).render())
        assert details.startswith("#5 custom · pruned (magnitude) from dense")


async def test_runs_are_named_noted_and_sorted(recording_app):
    app = recording_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await prune_to(pilot, {"conv2.weight": 0.9, "conv3.weight": 0.9})
        await prune_to(pilot, {"conv2.weight": 0.3, "conv3.weight": 0.0})
        await pilot.press("u")
        table = app.query_one(RunsTable)
        assert table.has_focus
        await pilot.press("n")
        assert isinstance(app.screen, RunNoteDialog)
        await pilot.press(*"gentle", "tab")  # the name first, its old value replaced as typed
        await pilot.press(*"only", "space", *"conv2,", "space", *"lightly", "enter")
        await pilot.pause()
        [first, second] = RunStore(app.workdir).load_all()
        assert (second.name, second.note) == ("gentle", "only conv2, lightly") and first.note == ""
        if "note" in table.columns:  # when it fits; the line under the table always tells it
            assert str(table.get_cell(second.id, "note")) == "only conv2, lightly"
        assert "note: only conv2, lightly" in str(app.query_one(RunDetails).render())
        ids = [key.value for key in table.rows]
        assert ids == [first.id, second.id]
        await pilot.press("O")  # smallest first
        assert [key.value for key in table.rows] == [first.id, second.id]
        assert table.selected_run.id == second.id  # the cursor stays on its run
        await pilot.press("O")  # most accurate first
        assert table.sort_by == "accuracy"
        accuracies = [r.accuracy_before for r in (table.records[0], table.records[1])]
        expected = [second.id, first.id] if accuracies[1] >= accuracies[0] else [first.id, second.id]
        assert [key.value for key in table.rows] == expected
        assert str(table.get_cell(second.id, "number")).strip().startswith("2")  # numbers keep time order


async def test_save_proposes_the_next_run_number_and_export_the_runs_name(recording_app):
    app = recording_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        for value in (0.2, 0.4, 0.6, 0.8):
            await prune_to(pilot, {"conv2.weight": value})
        await pilot.press("ctrl+s")
        assert app.screen.query_one(ParsedInput).value == "run5"  # four runs made: not run1
        await pilot.press("escape")
        await pilot.press("u", "n")  # the newest run, renamed
        app.screen.query_one("#run-name").value = "RUN5 compound"
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert app.screen.query_one(ParsedInput).value == "run6"  # run5 names a run now
        await pilot.press("escape")
        await pilot.press("w")
        assert isinstance(app.screen, AskDialog)
        assert app.screen.query_one(ParsedInput).value == "tiny-RUN5-compound.pt"  # not tiny-custom.pt


async def test_n_discards_a_pending_suggestion_even_in_the_runs_tab(recording_app):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await prune_to(pilot, {"conv2.weight": 0.5})
        await pilot.press("u")
        app.workbench.pending_suggestion = Suggestion(dict(app.workbench.targets), 50.0, 0.1)  # waits for its answer
        await pilot.press("n")
        assert app.workbench.pending_suggestion is None and not isinstance(app.screen, RunNoteDialog)


def test_runs_at_the_same_point_share_one_label():
    points = {1: (50.0, 90.0), 2: (50.0, 90.0), 3: (50.1, 90.01), 4: (20.0, 85.0)}
    groups = shared_labels(points, (0.0, 100.0), (80.0, 100.0), (30, 10))
    assert [numbers for numbers, _ in groups] == [[1, 2, 3], [4]]


async def test_an_unpruned_model_reads_dense_and_the_export_name_names_the_model_once(app, tmp_path):
    with torch.no_grad():
        app.workbench.session.model.conv1.bias[0] = 0.0  # a zero that is not pruning
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        status = app.query_one(StatusLine).status
        assert status.size_mib == app.workbench.session.dense_size  # 100%, as the log's dense size
        assert status.projected_mib == app.workbench.session.dense_size
        assert default_export_path(tmp_path, "demo", "demo-aggressive").name == "demo-aggressive.pt"
        assert default_export_path(tmp_path, "demo", "run1").name == "demo-run1.pt"


async def test_o_lists_the_shipped_profiles_of_this_model_from_any_folder(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app.workbench.session, "label", "demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("o")
        assert isinstance(app.screen, OpenProfileDialog)
        labels = [label for label, _ in app.screen.files]
        assert labels == ["demo-aggressive (shipped)", "demo-gentle (shipped)"]


async def test_a_stale_prediction_is_never_said_again(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        suggest = app.workbench.suggest
        app.workbench.set_target("conv2.weight", 0.5)
        suggest.accepted = Suggestion(dict(app.workbench.targets), 42.0, 0.1)
        suggest.accepted_method = app.workbench.session.method.name
        await pilot.press("M")  # another method: the prediction no longer holds
        await pilot.press("p")
        await wait_idle(pilot)
        assert not any(t.startswith("Predicted") for t in log_lines(app))
        suggest.accepted = Suggestion(dict(app.workbench.targets), 42.0, 0.1)
        suggest.accepted_method = app.workbench.session.method.name
        await pilot.press("p")
        await wait_idle(pilot)
        assert sum(t.startswith("Predicted 42.00%") for t in log_lines(app)) == 1
        await pilot.press("p")
        await wait_idle(pilot)
        assert sum(t.startswith("Predicted 42.00%") for t in log_lines(app)) == 1  # said once


async def test_the_header_shows_the_prediction_beside_the_measured_accuracy(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv2.weight", 0.5)
        app.workbench.suggest.accepted = Suggestion(dict(app.workbench.targets), 42.0, 0.1)
        app.workbench.suggest.accepted_method = app.workbench.session.method.name
        await pilot.press("p")
        await wait_idle(pilot)
        status = app.query_one(StatusLine).status
        assert status.accuracy_predicted == 42.0 and status.accuracy == app.workbench.session.accuracy
        assert "(pred 42.00%)" in str(app.query_one(StatusLine).render())
        app.workbench.set_target("conv2.weight", 0.6)
        await pilot.press("p")
        await wait_idle(pilot)
        assert app.query_one(StatusLine).status.accuracy_predicted is None  # another run now
