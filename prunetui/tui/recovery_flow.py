"""BatchNorm recalibration in the workbench: `b` recalibrates the model as it is now; `B` turns on
recalibration once pruning reaches the targets (after p, P, the prune before a finetune, an AGP finetune)
and in suggestions (their scan-free measurements and the pruned result), as `--recalibrate-bn` does on
the command line. It is part of every recipe the workbench builds (`base_recipe`)."""

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from prunetui.core.recipe import Recipe, Recovery
from prunetui.tui import jobs
from prunetui.workflow import steps

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


def recalibrate(session, ctx: jobs.JobContext) -> None:
    steps.recalibrate_step(session, ctx.say, ctx.report, ctx.cancel)


class RecoveryFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.recalibrate_bn = False  # off: the lab's numbers exactly
        self.last: Recipe | None = None  # the last finetune's recipe: its values are offered again

    def toggle(self) -> None:
        """`B`: recalibration after each prune and in suggestions, on or off."""
        self.recalibrate_bn = not self.recalibrate_bn
        state = "on" if self.recalibrate_bn else "off (the lab's numbers)"
        self.bench.write_log(f"BN recalibration after prune and in suggestions: {state}")
        self.show_marks()

    def remember(self, recipe: Recipe) -> None:
        """The last finetune's recipe: its values are offered again, its recovery options shown."""
        self.last = recipe
        self.show_marks()

    def show_marks(self) -> None:
        """The header's marks of the recovery options on: `+BN` (B), `+AGP` and `+KD` (the last finetune's
        schedule and distillation, which the finetune dialog offers again)."""
        recovery = self.last.recovery if self.last is not None else None
        marks = ["+BN"] if self.recalibrate_bn else []
        marks += ["+AGP"] if recovery is not None and recovery.gradual else []
        marks += ["+KD"] if recovery is not None and recovery.distill else []
        self.bench.recovery_marks = " ".join(marks)

    def base_recipe(self, start: str = "dense") -> Recipe:
        """The recipe of what the screen shows: the session's method and targets, B, and the last
        finetune's values (which a finetune dialog offers again)."""
        recipe = self.bench.session.recipe(start=start)
        if self.last is not None:
            recipe = replace(recipe, recovery=self.last.recovery, finetune=self.last.finetune,
                             processes=self.last.processes)  # fmt: skip
        return replace(recipe, recovery=replace(recipe.recovery, recalibrate_bn=self.recalibrate_bn))

    def recalibrate_now(self) -> None:
        """`b`: recalibrate the model as it is now (pruned or finetuned)."""
        bench = self.bench
        if bench.session.data is None:
            bench.show_error("Recalibration needs data: start prunetui with --data")
            return
        if bench.session.current_run is None:
            bench.show_warning("Nothing pruned yet: the dense statistics fit the dense weights (p prunes)")
            return
        bench.jobs.start("Recalibrate BN", partial(recalibrate, bench.session))

    def prune_job(self, targets: dict[str, float], predicted: float | None, start: str):
        """The job `p` runs: the recipe of the screen (with recalibration after it when `B` is on)."""
        recipe = replace(self.base_recipe(start), recovery=Recovery(recalibrate_bn=self.recalibrate_bn))
        return partial(jobs.prune, self.bench.session, recipe.with_targets(targets), predicted=predicted)
