"""The run records of a session: a record made for each prune and finetune, saved as it changes, found
by number or id, named and annotated by the user. Mixed into core.session.Session."""

import time

from prunetui.core.runs import RunRecord, RunStore, new_run_id, now_iso
from prunetui.errors import UserError

NAME_MAX, NOTE_MAX = 40, 200


class RunLog:
    """Needs of the session: `store`, `label`, `model_state`, `dense_size`, `device`, `origin`,
    `dense_accuracy`, `method`, `current_size()` and `percent()`."""

    store: RunStore | None

    def _new_run(self, kind: str, name: str, profile: dict[str, float]) -> RunRecord:
        size = self.current_size()
        return RunRecord(
            id=new_run_id(),
            name=name,
            kind=kind,
            model=self.label,
            model_state=self.model_state,
            profile={layer: s for layer, s in profile.items() if s > 0},
            dense_size_mib=self.dense_size,
            sparse_size_mib=size,
            percent_of_dense=self.percent(size),
            started=now_iso(),
            data=self.origin.data_spec,
            device=str(self.device),
            checkpoint=self.origin.checkpoint,
            accuracy_dense=self.dense_accuracy,
            method=self.method.name,
            data_fingerprint=self.origin.data_fingerprint,
            # a finetune changes no shape: it costs what the run it continues cost, and started where it did
            cost=dict(self.current_run.cost) if kind == "finetune" and self.current_run else {},
            start=self.current_run.start if kind == "finetune" and self.current_run else "dense",
        )

    def _update_finetune_run(self, record: RunRecord, epochs: list[dict], started: float) -> None:
        record.epochs = [
            {"epoch": e["epoch"], "accuracy": e["accuracy"], "best": e["best_accuracy"]} for e in epochs
        ]
        record.accuracy_after = max((e["accuracy"] for e in epochs), default=None)
        record.sparse_size_mib = self.current_size()
        record.percent_of_dense = self.percent(record.sparse_size_mib)
        record.seconds = round(time.perf_counter() - started, 3)
        self._save(record)

    def _save(self, record: RunRecord) -> None:
        if self.store is not None:
            self.store.save(record)

    def runs(self) -> list[RunRecord]:
        """The recorded runs of this model (same dense weights), oldest first."""
        return self.store.load_all(self.model_state) if self.store is not None else []

    def find_run(self, run_id: str) -> RunRecord:
        """By number in `runs()` (1 = oldest), by id, or by a unique prefix of an id."""
        records = self.runs()
        if run_id.isdigit() and 1 <= int(run_id) <= len(records):
            return records[int(run_id) - 1]
        matches = [r for r in records if r.id.startswith(run_id)]
        if len(matches) != 1:
            found = "no run of this model matches" if not matches else f"{len(matches)} runs match"
            raise UserError(f"{found} '{run_id}' (see prunetui runs)")
        return matches[0]

    def annotate_run(self, run_id: str, name: str | None = None, note: str | None = None) -> RunRecord:
        """Rename a run and/or set its note; saved atomically. The current run's record follows."""
        record = self.find_run(run_id)
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
        self._save(record)
        current = self.current_run
        if current is not None and current.id == record.id:
            current.name, current.note = record.name, record.note
        return record
