"""The progress row: what the job is on (stage and detail), the bar, and the time left."""

import re

from textual.app import App, ComposeResult
from textual.widgets import Label, ProgressBar

from prunetui.core.eta import Eta
from prunetui.core.events import Progress
from prunetui.tui.widgets.job_log import JobLog

from .conftest import wait_idle, wait_until
from .test_jobs import start_finetune


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LogApp(App):
    def compose(self) -> ComposeResult:
        yield JobLog(id="job-log")


def row(app: App) -> tuple[str, str]:
    log = app.query_one(JobLog)
    title = str(log.query_one("#job-title", Label).content).strip()
    return title, str(log.query_one("#job-eta", Label).content).strip()


async def test_the_row_shows_the_detail_and_the_time_left():
    app, clock = LogApp(), Clock()
    async with app.run_test(size=(100, 10)) as pilot:
        log = app.query_one(JobLog)
        log.eta = Eta(clock=clock)
        log.begin("Scan")
        await pilot.pause()
        assert row(app) == ("Scan", "")
        log.show_progress(Progress("scan", 0, 540, "base accuracy"))
        await pilot.pause()
        assert row(app) == ("scan base accuracy", "estimating...")
        clock.now = 10.0
        log.show_progress(Progress("scan", 108, 540, "backbone.conv3.weight at 0.70"))
        await pilot.pause()
        assert row(app) == ("scan backbone.conv3.weight at 0.70", "40 s left")  # 432 left at 10.8 a second
        bar = log.query_one(ProgressBar)
        assert (bar.progress, bar.total) == (108, 540)
        log.begin("Finetune")  # a new job forgets the last one's rate
        log.show_progress(Progress("train epoch 1", 3, 20, "batch 3/4"))
        await pilot.pause()
        assert row(app) == ("train epoch 1 batch 3/4", "estimating...")


async def test_a_running_finetune_names_its_epoch_and_batch_and_the_time_left(slow_app):
    app = slow_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        app.workbench.set_target("conv3.weight", 0.9)
        await pilot.press("p")
        await wait_idle(pilot)
        await start_finetune(pilot, epochs=1000)
        await wait_until(pilot, lambda: row(app)[1].endswith(" left") and row(app)[0].startswith("train"))
        title, left = row(app)
        assert re.fullmatch(r"train epoch \d+ batch \d/4", title)
        assert re.fullmatch(r"(\d+ h )?(\d+ min )?\d+ s left|\d+ h \d+ min left", left)
        await pilot.press("x")
        await wait_idle(pilot)
        assert not app.workbench.busy
