"""The Runs tab: runs listed and plotted, a run's targets loaded, two runs diffed, a finetune resumed,
and everything still there when prunetui is opened again in the same directory."""

import pytest

from prunetui.core.runs import RunRecord, RunStore
from prunetui.tui.job_runner import BUSY
from prunetui.tui.runs_view import pareto_best, profile_name_of
from prunetui.tui.screens.targets_diff_screen import TargetsDiffScreen
from prunetui.tui.widgets.layer_table import LayerTable
from prunetui.tui.widgets.plots.runs_plot import RunsPlot
from prunetui.tui.widgets.plots.runs_table import RunsTable, fit

from .conftest import LAYERS, make_app, make_session, wait_idle, wait_until
from .test_jobs import log_lines, start_finetune


def runs_cell(app, number: int, column: str) -> str:
    table = app.query_one(RunsTable)
    return str(table.get_cell(table.records[number - 1].id, column)).strip()


def record(session, number: int, profile: dict[str, float], **fields) -> RunRecord:
    return RunRecord(
        id=f"20260101-00000{number}-abcd",
        name=f"r{number}",
        kind="prune",
        model=session.label,
        model_state=session.state.opened_fingerprint,
        profile=profile,
        dense_size_mib=session.dense_size,
        sparse_size_mib=session.projected_size(profile),
        percent_of_dense=session.percent(session.projected_size(profile)),
        started=f"2026-01-01T00:00:0{number}+00:00",
        status="finished",
        **fields,
    )


def test_pareto_best_runs_are_those_nothing_beats_on_size_and_accuracy():
    def run(percent: float, after: float | None) -> RunRecord:
        return RunRecord("i", "n", "prune", "m", "s", {}, 1.0, 1.0, percent, "t", accuracy_after=after)

    runs = [run(50, 90), run(25, 85), run(25, 80), run(60, 89), run(10, None), run(25, 85)]
    assert pareto_best(runs) == [1, 2, 6]  # 3 and 4 are beaten; 5 has no accuracy; 2 and 6 tie
    assert profile_name_of(RunRecord("i", "run4+ft5+ft2", "finetune", "m", "s", {}, 1, 1, 1, "t")) == "run4"


async def test_prune_and_finetune_runs_are_listed_and_plotted(recording_app):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        assert app.query_one(RunsTable).row_count == 0
        app.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("p")
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=2)
        await wait_idle(pilot)
        table = app.query_one(RunsTable)
        assert [run.name for run in table.records] == ["custom", "custom+ft2"]
        assert runs_cell(app, 2, "status") == "finished"
        assert runs_cell(app, 2, "epochs") == "2/2"
        after = app.workbench.session.accuracy
        assert runs_cell(app, 2, "after") == f"{after:.2f}"
        assert runs_cell(app, 2, "change") == f"{after - app.workbench.session.dense_accuracy:+.2f}"
        assert runs_cell(app, 1, "percent") == f"{app.workbench.session.percent(app.workbench.session.current_size()):.2f}"
        assert table.best_numbers == [2]  # as small as the prune run and more accurate
        assert runs_cell(app, 2, "number") == "2*"
        await pilot.press("u")  # usable at 80x24: the table has the focus and its main columns
        assert app.query_one("#plots").active == "runs-tab" and table.has_focus
        assert app.screen.region.contains_region(table.region) and table.region.height >= 3
        assert {"number", "name", "status", "percent", "after", "change"} <= set(table.columns)
        assert not app.query_one(RunsPlot).display  # the plot only when the terminal is 30 rows or more
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert app.query_one(RunsPlot).display
        assert "Pareto-best (green): #2" in app.query_one(RunsPlot).render().plain


def footer_keys(app) -> list[tuple[str, str]]:
    """(key, description) of the footer's keys that fit beside the command palette's."""
    keys = list(app.query("FooterKey"))
    palette = next(k for k in keys if k.has_class("-command-palette"))
    return [(k.key, k.description) for k in keys if k is not palette and k.region.right <= palette.region.x]


async def test_the_runs_tab_footer_shows_the_run_keys_at_80_columns(recording_app, monkeypatch):
    app = recording_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        model_keys = footer_keys(app)
        assert [key for key, _ in model_keys] == ["s", "a", "p", "f", "x", "question_mark", "q"]
        app.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("p")
        await wait_idle(pilot)
        await pilot.press("u")
        await pilot.pause()
        assert footer_keys(app) == [
            ("enter", "Load"), ("m", "Mark"), ("d", "Diff"), ("R", "Resume"), ("n", "Name/note"),
            ("O", "Sort"), ("question_mark", "Help"), ("q", "Quit"),
        ]  # fmt: skip
        await pilot.press("m")
        assert app.query_one(RunsTable).marked_id == app.query_one(RunsTable).records[0].id
        app.workbench.set_target("conv3.weight", 0.5)
        await pilot.press("p")  # the model's keys still work, out of the footer
        await wait_idle(pilot)
        assert len(app.query_one(RunsTable).records) == 2
        notes = []
        monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(message))
        app.workbench.busy = True  # as while a job runs: a model key says why it does nothing
        await pilot.pause()
        await pilot.press("s")
        assert notes == [BUSY] and len(app.query_one(RunsTable).records) == 2
        app.workbench.busy = False


async def test_enter_loads_a_runs_targets_and_d_shows_the_difference(trained_state, tmp_path):
    session = make_session(trained_state, workdir=tmp_path)
    store = RunStore(tmp_path)
    store.save(record(session, 1, {"conv2.weight": 0.5}))
    store.save(record(session, 2, {"conv2.weight": 0.7, "conv3.weight": 0.9}))
    app = make_app(session, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        assert [run.name for run in app.query_one(RunsTable).records] == ["r1", "r2"]  # read at start
        await pilot.press("u", "enter")
        assert app.workbench.session.targets == {
            "conv1.weight": 0.0,
            "conv2.weight": 0.5,
            "conv3.weight": 0.0,
            "fc.weight": 0.0,
        }
        assert str(app.query_one(LayerTable).get_cell("conv2.weight", "target")).strip() == "0.50"
        assert log_lines(app)[-1] == "Targets from run 1 (r1)"
        await pilot.press("down", "d")  # nothing marked: the current targets against run 2
        diff = app.screen
        assert isinstance(diff, TargetsDiffScreen)
        assert diff.labels == ("targets", "run 2")
        assert diff.rows == [
            ("conv1.weight", 0.0, 0.0),
            ("conv2.weight", 0.5, 0.7),
            ("conv3.weight", 0.0, 0.9),
            ("fc.weight", 0.0, 0.0),
        ]
        assert str(diff.query_one("DataTable").get_row_at(1)[3]) == "+0.20"
        await pilot.press("escape")
        await pilot.press("up", "m", "down", "d")  # run 1 marked: run 1 against run 2
        assert runs_cell(app, 1, "number") == ">1"
        assert app.screen.title_text == "run 1 (r1) → run 2 (r2)"
        assert app.screen.labels == ("run 1", "run 2")
        assert [(a, b) for _, a, b in app.screen.rows] == [(0.0, 0.0), (0.5, 0.7), (0.0, 0.9), (0.0, 0.0)]
        await pilot.press("escape")
        assert not isinstance(app.screen, TargetsDiffScreen)
        await pilot.press("up", "d")  # the marked run itself: nothing to compare
        assert not isinstance(app.screen, TargetsDiffScreen)


async def test_reopening_shows_the_runs_and_the_last_scan_without_scanning_again(trained_state, tmp_path):
    first = make_app(make_session(trained_state, workdir=tmp_path), tmp_path)
    async with first.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        await pilot.press("s")
        await wait_idle(pilot)
        first.workbench.set_target("conv2.weight", 0.8)
        await pilot.press("p")
        await wait_idle(pilot)
    again = make_app(make_session(trained_state, workdir=tmp_path), tmp_path)
    async with again.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        assert [run.profile for run in again.query_one(RunsTable).records] == [{"conv2.weight": 0.8}]
        assert again.workbench.curves.points == first.workbench.curves.points
        assert again.workbench.curves.base_accuracy == first.workbench.curves.base_accuracy
        table = again.query_one(LayerTable)
        for layer_name in LAYERS:
            safe = str(table.get_cell(layer_name, "safe")).strip()
            assert safe == f"{first.workbench.curves.safe_sparsity(layer_name):.2f}"
        assert "Last scan of this model (4 layers) read from .prunetui/scans" in log_lines(again)
        assert not any(line.startswith("Scan") for line in log_lines(again))


async def test_R_resumes_a_cancelled_finetune_run(trained_state, tmp_path):
    app = make_app(make_session(trained_state, slow=True, workdir=tmp_path), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv3.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=3)
        await wait_until(pilot, lambda: len(app.workbench.epochs) >= 1)
        await pilot.press("x")
        await wait_idle(pilot)
        done = len(app.workbench.epochs)
        assert runs_cell(app, 2, "status") == "cancelled" and done < 3
        notes = []
        app.notify = lambda message, **kw: notes.append(message)
        await pilot.press("u")  # the cursor on the run the model holds: the cancelled finetune
        assert app.query_one(RunsTable).selected_run.status == "cancelled"
        await pilot.press("up", "R")  # the prune run: nothing to resume
        assert notes == ["run 1 (custom) has nothing to resume (prune, finished)"] and not app.workbench.busy
        await pilot.press("down", "R")
        await wait_idle(pilot)
        assert f"Resuming run 2 (custom+ft3) after epoch {done} of 3" in log_lines(app)
        assert [e.epoch for e in app.workbench.epochs] == list(range(done + 1, 4))
        assert all(f"Epoch {e.epoch} Accuracy" in "\n".join(log_lines(app)) for e in app.workbench.epochs)
        assert runs_cell(app, 2, "status") == "finished"
        assert runs_cell(app, 2, "epochs") == "3/3"
        assert set(app.workbench.session.state.masks) == {"conv3.weight"}


def test_a_narrow_runs_table_leaves_out_columns_then_shortens_names():
    def run(name: str, status: str) -> RunRecord:
        return RunRecord("i", name, "finetune", "m", "s", {}, 1, 1, 1, "t", status=status)

    runs = [run("suggested", "finished"), run("suggested+ft8", "cancelled")]
    everything = ["number", "name", "status", "mib", "percent", "before", "after", "change", "macs"]
    everything += ["speedup", "epochs"]
    details = ["lr", "method", "time", "note"]  # left out first
    assert fit(runs, 160, cell_padding=1).columns == everything + details
    assert fit(runs, 120, cell_padding=1).columns == [*everything, "lr", "method"]
    narrow_80 = fit(runs, 78, cell_padding=1)  # the 80-column layout: the speed-up stays
    assert narrow_80.columns == [c for c in everything if c not in ("mib", "macs", "epochs")]
    assert narrow_80.widths["name"] == 13
    wide_120 = fit(runs, 54, cell_padding=1)  # the plots pane of the 120-column layout
    assert wide_120.columns == ["number", "name", "status", "percent", "after", "change"]
    assert wide_120.widths["name"] == 10
    assert "status" not in fit(runs, 40, cell_padding=1).columns


def test_the_epochs_column_fits_the_longest_count():
    long = RunRecord("i", "r", "finetune", "m", "s", {}, 1, 1, 1, "t", epochs_planned=300)
    long.epochs = [{"epoch": e, "accuracy": 50.0, "best": False} for e in range(295)]
    assert fit([long], 200, cell_padding=1).widths["epochs"] == len("295/300")  # never cut to 295/3
    short = RunRecord("i", "r", "finetune", "m", "s", {}, 1, 1, 1, "t", epochs_planned=5)
    assert fit([short], 200, cell_padding=1).widths["epochs"] == 5  # the column's own minimum


def test_a_recalibrated_prune_counts_its_recalibrated_accuracy_against_dense():
    from prunetui.tui.widgets.plots.runs_table import run_details

    run = RunRecord(
        "i", "r", "prune", "m", "s", {}, 1, 1, 1, "t", accuracy_dense=99.56, accuracy_before=10.22
    )
    assert run.accuracy_change == pytest.approx(10.22 - 99.56)
    run.accuracy_recalibrated = 26.22  # the weights the run left hold the recalibrated statistics
    assert run.accuracy_change == pytest.approx(26.22 - 99.56)
    assert "26.22% after BN recalibration" in run_details(1, run, None)
    run.accuracy_after = 97.0  # finetuned: that is what it left
    assert run.accuracy_change == pytest.approx(97.0 - 99.56)
