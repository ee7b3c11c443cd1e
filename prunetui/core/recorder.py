"""The run recorder of a session: a record for each prune and finetune, made from the recipe it ran and
the model state it left, saved as it changes, found by number or id, named and annotated by the user."""

import platform
import time

import torch

import prunetui
from prunetui.core.model_state import ModelState
from prunetui.core.recipe import Recipe
from prunetui.core.runs import RunRecord, RunStore, new_run_id, now_iso
from prunetui.errors import UserError

NAME_MAX, NOTE_MAX = 40, 200


def environment(device: torch.device) -> dict:
    """What a run's numbers depend on besides the recipe, model and data (replay compares it)."""
    return {
        "torch": torch.__version__,
        "prunetui": prunetui.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


class RunRecorder:
    def __init__(self, store: RunStore | None, label: str, origin, state: ModelState):
        """`store` None: nothing is recorded. `origin`: where the model and data came from."""
        self.store, self.label, self.origin, self.state = store, label, origin, state

    def new(self, kind: str, recipe: Recipe, profile: dict[str, float], parent: RunRecord | None,
            accuracy_dense: float | None) -> RunRecord:  # fmt: skip
        """A record of a run that starts now from the model in hand, `parent` the run it continues."""
        state, size = self.state, self.state.current_size()
        return RunRecord(
            id=new_run_id(),
            name=recipe.name,
            kind=kind,
            model=self.label,
            model_state=state.opened_fingerprint,
            profile={layer: s for layer, s in profile.items() if s > 0},
            dense_size_mib=state.dense_size,
            sparse_size_mib=size,
            percent_of_dense=state.percent(size),
            started=now_iso(),
            data=self.origin.data_spec,
            device=str(state.device),
            checkpoint=self.origin.checkpoint,
            accuracy_dense=accuracy_dense,
            method=recipe.plan.method,
            data_fingerprint=self.origin.data_fingerprint,
            parent=parent.id if parent is not None else None,
            # a finetune changes no shape: it costs what the run it continues cost
            cost=dict(parent.cost) if kind == "finetune" and parent is not None else {},
            start=recipe.start if kind == "prune" else (parent.start if parent is not None else "dense"),
            recipe=recipe.as_dict(),
            environment=environment(state.device),
        )

    def ended(self, record: RunRecord) -> None:
        """The figures of the model in hand, when the run's work is done."""
        state = self.state
        record.sparse_size_mib = state.current_size()
        record.percent_of_dense = state.percent(record.sparse_size_mib)
        record.masks_fingerprint = state.masks_fingerprint()
        record.weights_fingerprint = state.fingerprint()
        self.save(record)

    def epochs(self, record: RunRecord, epochs: list[dict], started: float) -> None:
        """A finetune's epochs so far (resume states and the record stay in step)."""
        record.epochs = [
            {"epoch": e["epoch"], "accuracy": e["accuracy"], "best": e["best_accuracy"]} for e in epochs
        ]
        record.accuracy_after = max((e["accuracy"] for e in epochs), default=None)
        record.seconds = round(time.perf_counter() - started, 3)
        self.save(record)

    def save(self, record: RunRecord) -> None:
        if self.store is not None:
            self.store.save(record)

    def runs(self) -> list[RunRecord]:
        """The recorded runs of this model (same weights as opened), oldest first."""
        return self.store.load_all(self.state.opened_fingerprint) if self.store is not None else []

    def find(self, run_id: str) -> RunRecord:
        """By number in `runs()` (1 = oldest), by id, or by a unique prefix of an id."""
        records = self.runs()
        if run_id.isdigit() and 1 <= int(run_id) <= len(records):
            return records[int(run_id) - 1]
        matches = [r for r in records if r.id.startswith(run_id)]
        if len(matches) != 1:
            found = "no run of this model matches" if not matches else f"{len(matches)} runs match"
            raise UserError(f"{found} '{run_id}' (see prunetui runs)")
        return matches[0]

    def annotate(self, run_id: str, name: str | None = None, note: str | None = None) -> RunRecord:
        """Rename a run and/or set its note; saved atomically."""
        record = self.find(run_id)
        if name is not None:
            name = " ".join(name.split())
            if not name or len(name) > NAME_MAX:
                raise UserError(f"a run name is 1 to {NAME_MAX} characters")
            record.name = name
        if note is not None:
            note = " ".join(note.split())
            if len(note) > NOTE_MAX:
                raise UserError(f"a note is at most {NOTE_MAX} characters")
            record.note = note
        self.save(record)
        return record
