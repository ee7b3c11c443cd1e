"""BatchNorm recalibration in the workbench: `b` recalibrates the model as it is now; `B` turns on
recalibration after every prune (p, P, and the prune before a finetune) and in suggestions (their
scan-free measurements and the pruned result), as `--recalibrate-bn` does on the command line."""

from functools import partial
from typing import TYPE_CHECKING

from prunetui.tui import jobs
from prunetui.workflow import recovery

if TYPE_CHECKING:
    from prunetui.tui.app import PruneApp


def recalibrate(session, ctx: jobs.JobContext) -> None:
    recovery.recalibrate(session, ctx.say, ctx.report, ctx.cancel)


def prune_then_recalibrate(session, targets, ctx: jobs.JobContext, predicted=None, start="dense") -> None:
    """`p` with recalibration on: the lab's prune and its line, then the recalibrated line."""
    jobs.prune(session, targets, ctx, predicted, start)
    recalibrate(session, ctx)


class RecoveryFlow:
    def __init__(self, app: "PruneApp") -> None:
        self.app = app
        self.recalibrate_bn = False  # off: the lab's numbers exactly

    def toggle(self) -> None:
        """`B`: recalibration after each prune and in suggestions, on or off."""
        self.recalibrate_bn = not self.recalibrate_bn
        state = "on" if self.recalibrate_bn else "off (the lab's numbers)"
        self.app.write_log(f"BN recalibration after prune and in suggestions: {state}")

    def recalibrate_now(self) -> None:
        """`b`: recalibrate the model as it is now (pruned or finetuned)."""
        app = self.app
        if app.session.data is None:
            app.show_error("Recalibration needs data: start prunetui with --data")
            return
        if app.session.current_run is None:
            app.show_warning("Nothing pruned yet: the dense statistics fit the dense weights (p prunes)")
            return
        app.jobs.start("Recalibrate BN", partial(recalibrate, app.session))

    def prune_job(self, targets: dict[str, float], predicted: float | None, start: str):
        """The job `p` runs: with recalibration after it when `B` turned it on."""
        run = prune_then_recalibrate if self.recalibrate_bn else jobs.prune
        return partial(run, self.app.session, targets, predicted=predicted, start=start)
