"""A whole recipe as one run, the way `prunetui prune` runs it (and `prunetui replay` runs it again):
the dense accuracy, the prune (or, for an AGP schedule, none: the finetune prunes), BN recalibration
where the recipe asks, the finetune, and the output files, the resume state dropped only once they are
written."""

import threading
from dataclasses import dataclass

from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneResult
from prunetui.core.recipe import Recipe
from prunetui.core.session import Session
from prunetui.errors import UserError
from prunetui.workflow import lines, quantizing, steps


@dataclass
class RecipeRun:
    """What running a recipe did; None where a part did not run."""

    accuracy_dense: float | None
    pruned: steps.Pruned | None  # None under an AGP schedule (no one-shot prune)
    finetuned: steps.Finetuned | None  # None without finetune epochs
    written: dict[str, str]  # {"checkpoint": path, "onnx": path, "onnx_int8": path}
    quantized: quantizing.QuantizeResult | None = None  # when the recipe quantizes

    @property
    def result(self) -> FinetuneResult | None:
        return self.finetuned.result if self.finetuned is not None else None

    @property
    def accuracy_recalibrated(self) -> float | None:
        if self.finetuned is not None and self.finetuned.accuracy_recalibrated is not None:
            return self.finetuned.accuracy_recalibrated
        return self.pruned.accuracy_recalibrated if self.pruned is not None else None


def run_recipe(
    session: Session, recipe: Recipe, say, report: Report = ignore, cancel: threading.Event | None = None
) -> RecipeRun:
    """Run `recipe` on the model as opened (checked, and its output files checked, before any work)."""
    recipe = recipe.check()
    steps.check_outputs(recipe.outputs)
    if recipe.finetune.epochs:
        steps.require_data(session, "finetune")
    quantizing.check_before(session, recipe)
    dense = steps.evaluate_dense(session, say, report, cancel)
    pruned = None
    if recipe.recovery.gradual:  # from the dense weights (the zeros at load held) unless "current"
        session.reset() if recipe.start == "dense" else None
        say(lines.gradual_start(recipe.recovery.agp_share), "dim")
    else:
        pruned = steps.prune(session, say, report, cancel, recipe)
    if not recipe.finetune.epochs:
        quantized = quantizing.quantize(session, recipe, say, report, cancel)
        return RecipeRun(dense, pruned, None, steps.write_outputs(session, recipe, say), quantized)
    finetuned = steps.finetune(session, recipe, say, report, cancel)
    return RecipeRun(dense, pruned, finetuned, finetuned.written or {}, finetuned.quantized)


def check_data_unchanged(session: Session, record) -> None:
    """A replay needs the data the run used: its content fingerprint (sources/fingerprints.py) must match."""
    now = session.origin.data_fingerprint
    if record.data_fingerprint and now and record.data_fingerprint != now:
        raise UserError(
            f"the data behind {session.origin.data_spec} is not what run {record.name} used (fingerprint "
            f"{record.data_fingerprint} then, {now} now): a replay needs the same data"
        )


def find_recorded(session: Session, run_id: str):
    """The run `run_id` of the model opened now; a run of other weights is named as such."""
    try:
        return session.find_run(run_id)
    except UserError:
        store = session.recorder.store
        others = [r for r in (store.load_all() if store else []) if r.id.startswith(run_id)]
        if len(others) == 1:
            run = others[0]
            raise UserError(
                f"run {run.id} ({run.name}) started from other weights than those opened now (fingerprint "
                f"{run.model_state} then, {session.state.opened_fingerprint} now): open --model "
                f"{run.model}{f' --checkpoint {run.checkpoint}' if run.checkpoint else ''} as it did"
            ) from None
        raise
