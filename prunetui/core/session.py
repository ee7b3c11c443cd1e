"""The one object both front ends drive: a model, its data, its dense weights, targets and masks."""

import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from prunetui.core import pruning
from prunetui.core.evaluate import evaluate
from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneResult, FinetuneSettings, finetune, restore, snapshot
from prunetui.core.layers import LayerInfo, describe_layers, prunable_parameters
from prunetui.core.methods import Criterion, Plan, get_method
from prunetui.core.profile import Profile, check_layers
from prunetui.core.runs import RunRecord, RunStore, fingerprint, new_run_id, now_iso
from prunetui.core.scan_cache import ScanCache, cached_scan, load_cached, scan_key
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, ScanResult, scan
from prunetui.core.size import dense_size_mib, percent_of_dense, projected_size_mib, sparse_size_mib
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.dist.launch import Launcher, Rendezvous


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


class Session:
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

    def projected_size(self, targets: dict[str, float] | None = None) -> float:
        """Size that pruning the dense weights to `targets` (default: the current targets) gives."""
        dense_params = {name: self.dense_state[name] for name, _ in self.model.named_parameters()}
        return projected_size_mib(dense_params, targets or self.targets, kept=self.kept_count)

    def kept_count(self, name: str, sparsity: float) -> int:
        """Weights the method keeps of the dense `name` at `sparsity` (exact; cached)."""
        method = self.method
        key = (method.name, name, round(sparsity, 6))
        if key not in self._kept:
            self._kept[key] = method.kept(self.dense_scores(method=method)[name], sparsity)
        return self._kept[key]

    # --- method ----------------------------------------------------------------------------------
    def set_method(self, name: str) -> None:
        """Prune by the criterion called `name` from now on (UserError for an unknown name, or for a
        criterion that needs training data when the session has none)."""
        method = get_method(name)
        if method.needs_data and self.data is None:
            raise UserError(f"the {method.name} method needs training data: give a data spec (--data)")
        if method.name != self.method.name:
            self.method = method

    def dense_scores(
        self, cancel: threading.Event | None = None, method: Criterion | None = None
    ) -> dict[str, torch.Tensor]:
        """The importance of every dense weight by `method` (default: the session's), computed once."""
        method = method or self.method
        with self._scoring:
            if method.name not in self._dense_scores:
                self._dense_scores[method.name] = self._scores(self.dense_state, cancel, method)
        return self._dense_scores[method.name]

    def _scores(
        self, state: dict[str, torch.Tensor], cancel: threading.Event | None, method: Criterion | None = None
    ) -> dict[str, torch.Tensor]:
        train = self.data.train if self.data is not None else None
        return (method or self.method).scores(self.model, state, self.layer_names, train, cancel)

    def weight_cut(self, name: str, sparsity: float) -> float | None:
        """The |w| at or below which pruning `name` to `sparsity` cuts, for magnitude-like methods."""
        method = self.method
        return method.weight_cut(self.dense_state[name], self.dense_scores(method=method)[name], sparsity)

    def plan(self) -> Plan:
        """The method and the current targets."""
        return Plan(self.method.name, dict(self.targets))

    def layers(self) -> list[LayerInfo]:
        return describe_layers(self.model)

    # --- targets ---------------------------------------------------------------------------------
    def set_target(self, name: str, value: float) -> float:
        self.targets[name] = round(min(max(float(value), 0.0), 1.0), 4)
        return self.targets[name]

    def apply_profile(self, profile: Profile) -> None:
        """Targets become the profile's (unlisted layers 0). Unknown layer names raise UserError."""
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

    def prune(self, targets: dict[str, float] | None = None, run_name: str | None = None) -> None:
        """Restore the dense weights, then prune them to `targets` (default: the current targets) and
        keep the masks. A front end that lets targets change while a job runs passes a copy."""
        targets = dict(self.targets if targets is None else targets)
        scores = self.dense_scores()
        restore(self.model, self.dense_state)
        masks = pruning.masks_from_scores(scores, targets)
        self.masks = masks if self.regrow else pruning.hold(masks, self.start_masks)
        pruning.apply_masks(self.model, self.masks)
        self.accuracy = self.dense_accuracy if not any(s > 0 for s in targets.values()) else None
        self.current_run = self._new_run("prune", run_name or self.profile_name, targets)
        self.current_run.status = "finished"
        self._save(self.current_run)

    def finetune(
        self,
        settings: FinetuneSettings = FinetuneSettings(),
        report: Report = ignore,
        cancel: threading.Event | None = None,
        nproc: int = 1,
        rendezvous: "Rendezvous | None" = None,
    ) -> FinetuneResult:
        """Finetune with the masks held; recorded as a run that continues the current one.

        With `nproc` > 1 or a `rendezvous` it runs as a torch.distributed job (see prunetui.dist)."""
        data = self._require_data()
        train = self._finetuner(nproc, rendezvous)
        parent = self.current_run
        name = f"{parent.name if parent else self.profile_name}+ft{settings.epochs}"
        profile = parent.profile if parent else pruning.mask_sparsity(self.masks)
        record = self._new_run("finetune", name, profile)
        record.parent = parent.id if parent else None
        record.accuracy_before = self.accuracy
        record.epochs_planned, record.lr = settings.epochs, settings.lr
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
        if self.origin.data_spec is None:
            raise UserError(
                "distributed jobs need a model spec and a data spec: each process rebuilds the model and "
                "the data from them (open the model with --model and --data)"
            )
        from prunetui.dist.launch import Launcher  # torch.distributed only when asked for

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
                self.model, data.train, data.eval, self.masks, settings, report, cancel, save_state, resume
            )
        except BaseException as e:
            record.status, record.error = "failed", f"{type(e).__name__}: {e}"
            self._save(record)
            raise
        if result.best_accuracy is not None:
            self.accuracy = result.best_accuracy
            self.current_run = record
        record.status = "cancelled" if result.cancelled else "finished"
        self._update_finetune_run(record, [asdict(e) for e in result.epochs], started)
        if not result.cancelled and self.store is not None:
            self.store.drop_resume_state(record)
        self._save(record)
        return result

    def _update_finetune_run(self, record: RunRecord, epochs: list[dict], started: float) -> None:
        record.epochs = [
            {"epoch": e["epoch"], "accuracy": e["accuracy"], "best": e["best_accuracy"]} for e in epochs
        ]
        record.accuracy_after = max((e["accuracy"] for e in epochs), default=None)
        record.sparse_size_mib = self.current_size()
        record.percent_of_dense = self.percent(record.sparse_size_mib)
        record.seconds = round(time.perf_counter() - started, 3)
        self._save(record)

    # --- runs ------------------------------------------------------------------------------------
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
        )

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

    def scan(
        self,
        sparsities: Sequence[float] = DEFAULT_SPARSITIES,
        layers: Sequence[str] | None = None,
        report: Report = ignore,
        cancel: threading.Event | None = None,
        nproc: int = 1,
        rendezvous: "Rendezvous | None" = None,
        options: ScanOptions | None = None,
        use_cache: bool = True,
    ) -> ScanResult:
        """Scan the model as it is now (dense, or pruned and finetuned); over several processes with
        `nproc` > 1 or a `rendezvous`, the layers dealt to them. Layers already in the scan cache are
        served from it. On an evaluation subset (`options.eval_size`) the session's accuracy is kept."""
        data = self._require_data()
        options = options or ScanOptions()
        launcher = self._launcher(nproc, rendezvous)
        if launcher is not None and options != ScanOptions():
            raise UserError("scan options (eval size, amp) are not available for distributed scans")
        scores = self._scores(self.model.state_dict(), cancel)  # of the weights as they are now
        if launcher is None:
            run_scan = partial(scan, options=options, scores=scores)
        else:
            run_scan = partial(launcher.scan, scores=scores)
        whole = options.eval_size is None
        cache = self._scan_cache(sparsities, options) if use_cache else None
        result = cached_scan(
            cache,
            self.model,
            data.eval,
            sparsities,
            layers,
            report,
            cancel,
            self.accuracy if whole else None,
            run_scan,
        )
        if result.base_accuracy is not None and whole:
            self.accuracy = result.base_accuracy
        return result

    def stored_scan(
        self, sparsities: Sequence[float] = DEFAULT_SPARSITIES, options: ScanOptions | None = None
    ) -> ScanResult | None:
        """The cached scan of the model as it is now with this grid and options, if one was stored."""
        cache = self._scan_cache(sparsities, options or ScanOptions())
        return load_cached(cache) if cache is not None else None

    def _scan_cache(self, sparsities: Sequence[float], options: ScanOptions) -> ScanCache | None:
        if self.scan_cache_folder is None or self.origin.data_spec is None:
            return None
        key = scan_key(
            self.model,
            self.origin.data_fingerprint or self.origin.data_spec,
            sparsities,
            options.eval_size,
            options.accel.amp,
            self.method.name,
        )
        return ScanCache(self.scan_cache_folder, key)

    def reset(self) -> None:
        """Back to the dense weights, no masks (targets are kept)."""
        restore(self.model, self.dense_state)
        self.masks = {} if self.regrow else dict(self.start_masks)
        self.accuracy = self.dense_accuracy
        self.current_run = None

    @contextmanager
    def transaction(self):
        """Run a job; if it raises, put the weights, masks and accuracy back as they were."""
        state = snapshot(self.model)
        kept = dict(self.masks), self.accuracy, self.dense_accuracy, self.current_run, dict(self.targets)
        try:
            yield
        except BaseException:
            restore(self.model, state)
            self.masks, self.accuracy, self.dense_accuracy, self.current_run, self.targets = kept
            raise

    def pruned_sparsity(self) -> dict[str, float]:
        """Actual fraction of zeros in each prunable tensor now."""
        return {info.name: info.zero_fraction for info in self.layers()}
