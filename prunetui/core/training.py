"""The finetunes of a session: the training loop run here or over several processes, the seed it runs
with, the resume state kept after every epoch and the run record in step with it."""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneResult, finetune
from prunetui.core.model_state import ModelState
from prunetui.core.pruning import Masks
from prunetui.core.recipe import Finetune, Plan, Processes, Recipe, Recovery, recipe_from_dict
from prunetui.core.recorder import RunRecorder
from prunetui.core.runs import RunRecord
from prunetui.errors import UserError


@dataclass
class FinetuneJob:
    """One finetune, as `finetune`'s arguments: what runs it in this process (`run`) and over several
    processes (prunetui.distributed's Launcher.finetune) take the same job."""

    model: nn.Module
    train_batches: Iterable
    eval_batches: Iterable
    masks: Masks
    recipe: Recipe
    report: Report = ignore
    cancel: threading.Event | None = None
    save_state: Callable[[dict], None] | None = None
    resume: dict | None = None
    teacher: nn.Module | None = None


def run_here(job: FinetuneJob) -> FinetuneResult:
    """`finetune` of `job`, in this process."""
    return finetune(
        job.model, job.train_batches, job.eval_batches, job.masks, job.recipe, job.report, job.cancel,
        job.save_state, job.resume, teacher=job.teacher,
    )  # fmt: skip


RESUME_VERSION = 2  # of the state a finetune leaves after each epoch (1: before recipes)


def local_only(processes: Processes, state: ModelState):
    """The launcher of a session that was not given specs: this process only."""
    if processes.distributed:
        raise UserError(
            "distributed jobs need a model spec and a data spec: each process rebuilds the model and "
            "the data from them (open the model with --model and --data)"
        )
    return None


Launch = Callable[[Processes, ModelState], object]  # -> a launcher (prunetui.distributed), or None


class Training:
    def __init__(self, state: ModelState, recorder: RunRecorder, launch):
        self.state, self.recorder, self.launch = state, recorder, launch

    def run(self, data, recipe: Recipe, record: RunRecord, report: Report, cancel, resume: dict | None):
        """Finetune the model in hand by `recipe` (resuming from `resume`, a saved state); the record
        follows every epoch and ends "finished", "cancelled" or "failed" (then this raises)."""
        state, store = self.state, self.recorder.store
        launcher = self.launch(recipe.processes, state)
        train = run_here if launcher is None else launcher.finetune
        started = time.perf_counter() - record.seconds

        def save_state(saved: dict) -> None:
            # the generator as the next epoch will draw from it: a resumed run shuffles as this one would
            saved |= {"masks": state.masks, "version": RESUME_VERSION, "recipe": recipe.as_dict()}
            saved["stages"] = [stage.as_dict() for stage in state.stages]  # the structure the weights fit
            saved["rng"] = torch.get_rng_state()
            if store is not None:
                store.save_resume_state(record, saved)
            self.recorder.epochs(record, saved["epochs"], started)

        teacher = state.teacher() if recipe.recovery.distill else None
        with torch.random.fork_rng(devices=[]):
            if resume is not None and resume.get("rng") is not None:
                torch.set_rng_state(resume["rng"].cpu())
            else:
                torch.manual_seed(recipe.seed)  # the shuffle and augmentation draws: a replay repeats them
            try:
                job = FinetuneJob(state.model, data.train, data.eval, state.masks, recipe, report, cancel,
                                  save_state, resume, teacher)  # fmt: skip
                result: FinetuneResult = train(job)
            except BaseException as e:
                record.status, record.error = "failed", f"{type(e).__name__}: {e}"
                self.recorder.save(record)
                raise
        if recipe.recovery.gradual and result.masks is not None and result.best_epoch is not None:
            state.masks = {name: mask.to(state.device) for name, mask in result.masks.items()}
        state.changed()
        record.status = "cancelled" if result.cancelled else "finished"
        self.recorder.epochs(record, [asdict(e) for e in result.epochs], started)
        outputs = recipe.outputs.checkpoint or recipe.outputs.onnx
        if not result.cancelled and not outputs and store is not None:
            store.drop_resume_state(record)  # else once the outputs are written (workflow.steps.complete)
        self.recorder.ended(record)
        return result

    def resume_state(self, record: RunRecord, run_id: str) -> dict:
        """What the run saved after its last completed epoch."""
        path = self.recorder.store.resume_path(record)
        try:
            return torch.load(path, map_location=self.state.device, weights_only=True)
        except (OSError, RuntimeError, EOFError) as e:
            raise UserError(f"cannot read the saved state of run {run_id}: {e}") from None


def new_seed() -> int:
    """A seed for a run that was given none (recorded, so a replay draws the same)."""
    return int(torch.randint(2**31 - 1, (), generator=torch.Generator().manual_seed(time.time_ns() % 2**63)))


def resume_recipe(state: dict, record: RunRecord) -> Recipe:
    """The recipe a resume state holds; a state saved before recipes (version 1) holds the finetune's
    settings, read into one (settings it did not know take their defaults)."""
    if state.get("recipe") is not None:
        return recipe_from_dict(state["recipe"])
    old = state.get("settings") or {}
    finetune_keys = ("epochs", "lr", "momentum", "weight_decay", "amp")
    recovery_keys = ("schedule", "agp_share", "distill", "temperature", "alpha")
    targets = old.get("gradual_targets") or record.profile
    return Recipe(
        plan=Plan(record.method, dict(targets)),
        recovery=Recovery(**{k: old[k] for k in recovery_keys if k in old}),
        finetune=Finetune(**{k: old[k] for k in finetune_keys if k in old}),
        name=record.name,
        seed=0,
    )
