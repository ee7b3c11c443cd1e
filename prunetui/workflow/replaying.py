"""`prunetui replay N`: run a recorded run again, from the model as opened, and say figure by figure
whether it reproduced.

A run continues the runs before it (a finetune continues its prune; a prune further continues the run
it started from), so the replay runs the chain from the last run that started from the weights as
opened, each with the recipe it recorded (seed included), writing no files. The model and the data
must be the ones the run used (content fingerprints: a changed file is a refusal, not a silently
different run); torch's thread count is set to the recorded one for the replay.

On the CPU every figure must be equal. On CUDA, kernels are not bit-reproducible: sizes and the masks
of a prune must be equal, accuracies within CUDA_TOLERANCE points; finetuned weights are not compared.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch

from prunetui.core.events import Report, ignore
from prunetui.core.recipe import Outputs, recipe_from_dict
from prunetui.core.runs import RunRecord
from prunetui.core.session import Session
from prunetui.errors import UserError
from prunetui.workflow import steps
from prunetui.workflow.run import check_data_unchanged, find_recorded

CUDA_TOLERANCE = 0.5  # points of accuracy a CUDA replay may differ by (README: "Runs that replay")
EXACT = ("sparse_size_mib", "masks_fingerprint")


@dataclass
class Figure:
    run: str  # "3 prune"
    name: str
    recorded: object
    replayed: object
    same: bool


@dataclass
class Replayed:
    record: RunRecord
    figures: list[Figure] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # ids of the new records the replay made
    tolerance: float = 0.0

    @property
    def reproduced(self) -> bool:
        return all(figure.same for figure in self.figures)

    def as_json(self) -> dict:
        return {
            "run": self.record.id,
            "replayed_runs": self.runs,
            "reproduced": self.reproduced,
            "tolerance": self.tolerance,
            "figures": [
                {"run": f.run, "name": f.name, "recorded": f.recorded, "replayed": f.replayed, "same": f.same}
                for f in self.figures
            ],
        }


def chain_of(session: Session, record: RunRecord) -> list[RunRecord]:
    """The runs `record` continues, back to the last one that started from the weights as opened."""
    by_id = {run.id: run for run in session.runs()}
    chain = [record]
    while chain[0].parent is not None and not (chain[0].kind == "prune" and chain[0].start == "dense"):
        parent = by_id.get(chain[0].parent)
        if parent is None:
            raise UserError(f"run {chain[0].name} continues a run that is no longer recorded here")
        chain.insert(0, parent)
    missing = [run.name for run in chain if run.recipe is None]
    if missing:
        raise UserError(f"run {missing[0]} was recorded before recipes: it cannot be replayed")
    return chain


@contextmanager
def recorded_threads(threads: int | None, say):
    """torch's CPU thread count as the run had it (reductions are summed in another order otherwise)."""
    now = torch.get_num_threads()
    if threads and threads != now:
        say(f"Using {threads} CPU threads, as the run did (this process had {now})", "dim")
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(now)


def replay(
    session: Session, run_id: str, say, report: Report = ignore, cancel: threading.Event | None = None
) -> Replayed:
    """Replay run `run_id` (a number in `prunetui runs`, or an id) and compare what it recorded."""
    record = find_recorded(session, run_id)
    check_data_unchanged(session, record)
    chain = chain_of(session, record)
    cuda = session.device.type == "cuda"
    outcome = Replayed(record, tolerance=CUDA_TOLERANCE if cuda else 0.0)
    say(
        f"Replaying run {run_id} ({record.name}): {len(chain)} run{'s' if len(chain) > 1 else ''} from the model as opened"
    )
    session.reset()
    with recorded_threads(record.environment.get("threads"), say):
        for original in chain:
            recipe = replace(recipe_from_dict(original.recipe), outputs=Outputs())
            if original.kind == "prune":
                steps.prune(session, say, report, cancel, recipe)
            else:
                steps.finetune(session, recipe, say, report, cancel)
            again = session.current_run
            again.note = f"replay of {original.id}"
            session.recorder.save(again)
            outcome.runs.append(again.id)
            outcome.figures += compare(original, again, outcome.tolerance, cuda)
    for figure in outcome.figures:
        mark = "same" if figure.same else "DIFFERENT"
        say(f"  {figure.run} {figure.name}: recorded {figure.recorded}, replayed {figure.replayed}: {mark}",
            "" if figure.same else "yellow")  # fmt: skip
    verdict = "reproduced" if outcome.reproduced else "did not reproduce"
    say(
        f"Run {run_id} {verdict} ({len(outcome.figures)} figures{', CUDA tolerance' if cuda else ', exactly'})"
    )
    return outcome


def figures_of(run: RunRecord) -> dict[str, object]:
    """What a run recorded that a replay must give again."""
    figures = {
        "sparse_size_mib": run.sparse_size_mib,
        "masks_fingerprint": run.masks_fingerprint,
        "accuracy_before": run.accuracy_before,
        "accuracy_recalibrated": run.accuracy_recalibrated,
    }
    if run.kind == "finetune":
        figures |= {f"epoch {e['epoch']} accuracy": e["accuracy"] for e in run.epochs}
        figures |= {"accuracy_after": run.accuracy_after, "weights_fingerprint": run.weights_fingerprint}
    return {name: value for name, value in figures.items() if value is not None}


def compare(original: RunRecord, again: RunRecord, tolerance: float, cuda: bool) -> list[Figure]:
    recorded, replayed = figures_of(original), figures_of(again)
    label = f"{original.name} ({original.kind})"
    found = []
    for name, value in recorded.items():
        if cuda and name == "weights_fingerprint":
            continue  # CUDA kernels are not bit-reproducible: the accuracies say what matters
        other = replayed.get(name)
        numeric = isinstance(value, float) and isinstance(other, float) and name not in EXACT
        same = abs(value - other) <= tolerance if numeric else value == other
        found.append(Figure(label, name, value, other, same))
    return found
