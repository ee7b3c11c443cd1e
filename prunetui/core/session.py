"""The one object both front ends drive: a model, its data, its dense weights, targets and masks."""

import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from prunetui.core import pruning
from prunetui.core.evaluate import evaluate
from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneResult, FinetuneSettings, finetune, restore, snapshot
from prunetui.core.layers import LayerInfo, describe_layers, prunable_parameters
from prunetui.core.methods import Criterion, get_method, is_structured
from prunetui.core.profile import Profile, check_layers
from prunetui.core.run_log import RunLog
from prunetui.core.runs import RunRecord, RunStore, fingerprint
from prunetui.core.session_channel import SessionChannel
from prunetui.core.session_method import SessionMethod
from prunetui.core.session_recovery import SessionRecovery
from prunetui.core.session_scans import SessionScans
from prunetui.core.size import (
    BITS,
    MIB,
    dense_size_mib,
    percent_of_dense,
    projected_size_mib,
    sparse_size_mib,
)
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.distributed.launch import Launcher, Rendezvous


@dataclass
class Splits:
    """What a session needs of a dataset: iterables of (images, labels) batches."""

    train: Iterable
    eval: Iterable


@dataclass(frozen=True)
class Origin:
    """Where the model and data came from, as the user named them: recorded in every run. The data's
    fingerprint (what it is, whatever its name: sources/fingerprints.py) keys the scan cache."""

    data_spec: str | None = None
    checkpoint: str | None = None
    data_fingerprint: str | None = None


class Session(RunLog, SessionScans, SessionChannel, SessionRecovery, SessionMethod):
    """Model + data + masks. Jobs (evaluate, prune, finetune, scan) take a report callback and a cancel
    event; run them one at a time."""

    def __init__(
        self,
        model: nn.Module,
        data: Splits | None = None,
        label: str = "model",
        origin: Origin = Origin(),
        store: RunStore | None = None,
    ):
        self.model = model.eval()
        self.data = data
        self.label = label
        self.device = next(model.parameters()).device
        self.dense_state = snapshot(model)
        self.layer_names = list(prunable_parameters(model))
        self.targets = {name: 0.0 for name in self.layer_names}
        # zeros present at load are part of the starting state: held through prune and finetune
        # (Han et al. 2015's iterative pruning keeps them), unless `regrow`
        self.start_masks = pruning.existing_zeros(prunable_parameters(model))
        self.regrow = False
        self.masks: pruning.Masks = dict(self.start_masks)
        self.dense_size = dense_size_mib(model)
        self.dense_accuracy: float | None = None
        self.accuracy: float | None = None  # of the model as it is now, when known
        self.method: Criterion = get_method(None)
        # by method name, so a preview thread finishing after a method change never mixes two methods
        self._dense_scores: dict[str, dict[str, torch.Tensor]] = {}
        self._kept: dict[tuple[str, str, float], int] = {}
        self._scoring = threading.Lock()  # preview threads and jobs may ask for the same scores at once
        self.origin = origin
        self.store = store  # None: runs are not recorded
        self.model_state = fingerprint(self.dense_state)
        self.profile_name = "custom"
        self.current_run: RunRecord | None = None  # the run whose weights the model holds now
        self.scan_cache_folder: Path | None = None  # scans are cached here when set (and the data spec known)
        self._init_channel()  # the dense model, a channel-pruned one swapped in, measured cost

    @property
    def is_dense(self) -> bool:
        """The model holds the weights it was opened with (nothing pruned or finetuned since)."""
        return self.current_run is None

    def set_regrow(self, regrow: bool) -> None:
        """True: the zeros present at load are not held (finetuning may grow them back)."""
        self.regrow = regrow
        if self.is_dense:
            self.masks = {} if regrow else dict(self.start_masks)

    def start_sparsity(self) -> dict[str, float]:
        """Fraction of each prunable tensor that was zero at load (0.0 for dense tensors)."""
        held = pruning.mask_sparsity(self.start_masks)
        return {name: held.get(name, 0.0) for name in self.layer_names}

    # --- sizes -----------------------------------------------------------------------------------
    def current_size(self) -> float:
        return sparse_size_mib(self.model)

    def percent(self, size_mib: float) -> float:
        return percent_of_dense(size_mib, self.dense_size)

    def reported_size(self) -> float:
        """The size to show for the model now: the dense size while nothing is pruned (as the lab reports
        a dense model: every parameter, so zero-initialised biases do not read as pruning), else the
        lab's sparse size (nonzeros)."""
        return self.dense_size if not self.masks and not self.channel_pruned else self.current_size()

    def projected_size(self, targets: dict[str, float] | None = None, start: str = "dense") -> float:
        """Size that pruning to `targets` (default: the current targets) gives: from the dense weights, or
        with `start="current"` further from the weights as they are (sparsities only grow). Nothing pruned
        at all: the dense size, as `reported_size`."""
        targets = targets or self.targets
        if self.structured:
            return self.projected_cost(targets).size_mib
        if start == "current" and not self.is_dense:
            return self._projected_further(targets)
        if not self.start_masks and not any(s > 0 for s in targets.values()):
            return self.dense_size
        dense_params = {name: self.dense_state[name] for name, _ in self.model.named_parameters()}
        return projected_size_mib(dense_params, targets, kept=self.kept_count)

    def _projected_further(self, targets: dict[str, float]) -> float:
        masks = self._further_masks(targets, self._scores(self.model.state_dict(), None))
        params = dict(self.model.named_parameters())
        kept = {name: int(mask.sum()) for name, mask in masks.items()}
        count = sum(kept[n] if n in kept else int(torch.count_nonzero(p)) for n, p in params.items())
        return count * BITS / MIB

    def _further_masks(self, targets: dict[str, float], scores: dict[str, torch.Tensor]) -> pruning.Masks:
        """Masks of `targets` on `scores` of the current weights, every mask held now kept."""
        return pruning.hold(pruning.masks_from_scores(scores, targets), self.masks)

    def layers(self) -> list[LayerInfo]:
        return describe_layers(self.model)

    # --- targets ---------------------------------------------------------------------------------
    def set_target(self, name: str, value: float) -> float:
        self.targets[name] = round(min(max(float(value), 0.0), 1.0), 4)
        return self.targets[name]

    def apply_profile(self, profile: Profile) -> None:
        """Targets become the profile's (unlisted layers 0). Unknown layer names raise UserError."""
        if is_structured(get_method(profile.method)):  # names of channel groups, and prunable ones
            self.check_channel_targets(profile.sparsity, f"profile '{profile.name}': ")
        check_layers(profile, self.layer_names)
        self.set_method(profile.method)
        self.targets = {name: profile.sparsity.get(name, 0.0) for name in self.layer_names}
        self.profile_name = profile.name

    def profile(self, name: str, description: str | None = None) -> Profile:
        sparsity = {layer: s for layer, s in self.targets.items() if s > 0}
        return Profile(
            name=name, sparsity=sparsity, model=self.label, description=description, method=self.method.name
        )

    # --- jobs ------------------------------------------------------------------------------------
    def _require_data(self) -> Splits:
        if self.data is None:
            raise ValueError("no data: give a data spec to evaluate, scan or finetune")
        return self.data

    def evaluate(self, report: Report = ignore, cancel: threading.Event | None = None) -> float:
        self.accuracy = evaluate(self.model, self._require_data().eval, report, cancel)
        if self.is_dense and self.dense_accuracy is None:
            self.dense_accuracy = self.accuracy
        run = self.current_run
        if run is not None and run.kind == "prune" and run.accuracy_before is None:
            run.accuracy_before = self.accuracy  # the record describes exactly this state
            self._save(run)
        return self.accuracy

    def prune(
        self,
        targets: dict[str, float] | None = None,
        run_name: str | None = None,
        start: str = "dense",
        cancel: threading.Event | None = None,
    ) -> None:
        """Prune to `targets` (default: the current targets) and keep the masks. `start="dense"` (the
        lab's) restores the dense weights first; `start="current"` prunes further from the weights as
        they are (Han et al. 2015's iterative pruning): scores of the current weights, every mask held,
        so a layer's sparsity only grows. A front end that lets targets change while a job runs passes
        a copy."""
        if start not in ("dense", "current"):
            raise ValueError(f"start must be 'dense' or 'current', got {start!r}")
        targets = dict(self.targets if targets is None else targets)
        if self.structured:
            return self._prune_channels(targets, run_name or self.profile_name, start)
        parent = self.current_run if start == "current" else None
        if start == "current" and not self.is_dense:
            self.masks = self._further_masks(targets, self._scores(self.model.state_dict(), cancel))
            accuracy = self.accuracy
        else:
            start, scores = "dense", self.dense_scores(cancel)
            self._back_to_dense_model()
            restore(self.model, self.dense_state)
            masks = pruning.masks_from_scores(scores, targets)
            self.masks = masks if self.regrow else pruning.hold(masks, self.start_masks)
            accuracy = self.dense_accuracy
        pruning.apply_masks(self.model, self.masks)
        self.accuracy = accuracy if not any(s > 0 for s in targets.values()) else None
        self.current_run = self._new_run("prune", run_name or self.profile_name, targets)
        self.current_run.start, self.current_run.status = start, "finished"
        self.current_run.parent = parent.id if parent is not None else None
        self._save(self.current_run)

    # --- what the weights hold -------------------------------------------------------------------
    def pruned_targets(self) -> dict[str, float]:
        """The targets the weights were pruned to (the current run's), all 0 while nothing is pruned."""
        run = self.current_run
        unpruned = run is None or (run.kind == "finetune" and run.parent is None and run.schedule != "agp")
        profile = {} if unpruned else run.profile
        return {name: profile.get(name, 0.0) for name in self.layer_names}

    def targets_changed(self) -> bool:
        """The targets shown differ from those the weights hold: a finetune or an export acts on the
        weights as pruned, so a front end asks first (prune to the targets, or go on and say so)."""
        held = self.pruned_targets()
        return any(abs(self.targets[name] - held[name]) > 1e-9 for name in self.layer_names)

    def finetune(
        self,
        settings: FinetuneSettings = FinetuneSettings(),
        report: Report = ignore,
        cancel: threading.Event | None = None,
        nproc: int = 1,
        rendezvous: "Rendezvous | None" = None,
    ) -> FinetuneResult:
        """Finetune with the masks held; recorded as a run that continues the current one.

        With `nproc` > 1 or a `rendezvous` it runs as a torch.distributed job (see prunetui.distributed)."""
        data = self._require_data()
        train = self._finetuner(nproc, rendezvous)
        parent = self.current_run
        name = f"{parent.name if parent else self.profile_name}+ft{settings.epochs}"
        profile = parent.profile if parent else pruning.mask_sparsity(self.masks)
        record = self._new_run("finetune", name, self._finetune_profile(settings, profile))
        record.parent = parent.id if parent else None
        record.accuracy_before = self.accuracy
        record.epochs_planned, record.lr = settings.epochs, settings.lr
        self._record_recovery(record, settings)  # schedule, distillation
        self._save(record)
        return self._run_finetune(data, record, settings, report, cancel, None, train)

    def resume(
        self,
        run_id: str,
        report: Report = ignore,
        cancel: threading.Event | None = None,
        nproc: int = 1,
        rendezvous: "Rendezvous | None" = None,
    ) -> FinetuneResult:
        """Go on with an interrupted finetune from its last completed epoch (same model required)."""
        train = self._finetuner(nproc, rendezvous)
        record = self.find_run(run_id)
        if record.kind != "finetune" or record.resume_file is None:
            raise UserError(f"run {run_id} has nothing to resume (status {record.status})")
        path = self.store.resume_path(record)
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (OSError, RuntimeError, EOFError) as e:
            raise UserError(f"cannot read the saved state of run {run_id}: {e}") from None
        self.masks = state["masks"]
        self.targets = {name: record.profile.get(name, 0.0) for name in self.layer_names}
        settings = FinetuneSettings(**state["settings"])
        return self._run_finetune(self._require_data(), record, settings, report, cancel, state, train)

    def _finetuner(self, nproc: int, rendezvous: "Rendezvous | None"):
        launcher = self._launcher(nproc, rendezvous)
        return finetune if launcher is None else launcher.finetune

    def _launcher(self, nproc: int, rendezvous: "Rendezvous | None") -> "Launcher | None":
        """What runs a job over several processes, or None to run it in this one."""
        if nproc == 1 and rendezvous is None:
            return None
        self._refuse_distributed()
        if self.origin.data_spec is None:
            raise UserError(
                "distributed jobs need a model spec and a data spec: each process rebuilds the model and "
                "the data from them (open the model with --model and --data)"
            )
        from prunetui.distributed.launch import Launcher  # torch.distributed only when asked for

        return Launcher(self.label, self.origin.data_spec, nproc, rendezvous)

    def _run_finetune(self, data, record, settings, report, cancel, resume, train=finetune) -> FinetuneResult:
        started = time.perf_counter() - record.seconds

        def save_state(state: dict) -> None:
            state["masks"], state["settings"] = self.masks, asdict(settings)
            if self.store is not None:
                self.store.save_resume_state(record, state)
            self._update_finetune_run(record, state["epochs"], started)

        try:
            result = train(
                self.model, data.train, data.eval, self.masks, settings, report, cancel, save_state, resume,
                teacher_state=self.dense_state if settings.distill else None,
            )  # fmt: skip
        except BaseException as e:
            record.status, record.error = "failed", f"{type(e).__name__}: {e}"
            self._save(record)
            raise
        if result.best_accuracy is not None:
            self.accuracy = result.best_accuracy
            self.current_run = record
            self._keep_grown_masks(settings, result)  # an AGP schedule grew them to the targets
        record.status = "cancelled" if result.cancelled else "finished"
        self._update_finetune_run(record, [asdict(e) for e in result.epochs], started)
        if not result.cancelled and self.store is not None:
            self.store.drop_resume_state(record)
        self._save(record)
        return result

    def reset(self) -> None:
        """Back to the dense weights, no masks (targets are kept)."""
        self._back_to_dense_model()
        restore(self.model, self.dense_state)
        self.masks = {} if self.regrow else dict(self.start_masks)
        self.accuracy = self.dense_accuracy
        self.current_run = None

    @contextmanager
    def transaction(self, restore_targets: bool = True):
        """Run a job; if it raises, put the weights, masks and accuracy back as they were (and the
        targets, unless the front end lets them be edited while the job runs: a scan's)."""
        state, structure = snapshot(self.model), self._structure()
        kept = dict(self.masks), self.accuracy, self.dense_accuracy, self.current_run, dict(self.targets)
        try:
            yield
        except BaseException:
            self._set_structure(structure)
            restore(self.model, state)
            self.masks, self.accuracy, self.dense_accuracy, self.current_run, targets = kept
            self.targets = targets if restore_targets else self.targets
            raise

    def pruned_sparsity(self) -> dict[str, float]:
        """Actual fraction of zeros in each prunable tensor now."""
        return {info.name: info.zero_fraction for info in self.layers()}
