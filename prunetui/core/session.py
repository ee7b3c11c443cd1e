"""The object both front ends drive: a model and its data, made of parts with small interfaces.

- `state` (core.model_state.ModelState): the model as opened and as it is, its masks or channel stages;
- `method` (core.methods): how it is pruned; every method has the same lifecycle;
- `recorder` (core.recorder.RunRecorder): one record per prune and finetune, with the recipe it ran;
- `scans` (core.scans.Scans): where scans are cached; `cost` (core.run_cost.CostMeter): measured cost;
- `launch`: what runs a finetune or scan over several processes, chosen when the session opens (the
  workflow layer passes torchrun's launcher; the engine itself runs everything in this process).

Every step takes a recipe (core.recipe) or plain arguments, a report callback and a cancel event, and
returns plain data. Run them one at a time.
"""

import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch

from prunetui.core.evaluate import evaluate
from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneResult
from prunetui.core.lineage import stage_from_dict
from prunetui.core.methods import Method, Projection, get_method
from prunetui.core.model_state import ModelState
from prunetui.core.patterns import Resolved
from prunetui.core.profile import Profile, check_layer_names
from prunetui.core.recalibrate import batch_norms, recalibrate_bn
from prunetui.core.recipe import Plan, Processes, Recipe
from prunetui.core.recorder import RunRecorder
from prunetui.core.run_cost import CostMeter, cost_of
from prunetui.core.runs import Origin, RunRecord, RunStore
from prunetui.core.scans import Scans
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, ScanResult
from prunetui.core.training import Launch, Training, local_only, new_seed, resume_recipe
from prunetui.errors import UserError


@dataclass
class Splits:
    """What a session needs of a dataset: iterables of (images, labels) batches."""

    train: Iterable
    eval: Iterable


class Session:
    def __init__(
        self,
        model: torch.nn.Module,
        data: Splits | None = None,
        label: str = "model",
        origin: Origin = Origin(),
        store: RunStore | None = None,
        *,
        launch: Launch = local_only,
        state: ModelState | None = None,
    ):
        """`state`: the model state when the opener built one (a reopened channel export); else made
        from `model`."""
        self.state = state or ModelState(model)
        self.state.example_source = data.eval if data is not None else None  # read when first needed
        self.data = data
        self.label, self.origin = label, origin
        self.recorder = RunRecorder(store, label, origin, self.state)
        self.scans = Scans(self.state, data_key=origin.data_fingerprint or origin.data_spec)
        self.cost = CostMeter(self.state)
        self.training = Training(self.state, self.recorder, launch)
        self.launch = launch
        self.method: Method = get_method(None)
        self.targets = {name: 0.0 for name in self.state.layer_names}
        self.layer_bits: dict[str, int] = {}  # k-means bits set per layer (a profile's [bits], the TUI's)
        self.quantized = None  # core.quantize.Quantized: the codes of the weights in hand, once quantized
        self.profile_name = "custom"
        self.resolved = Resolved({})  # what the last profile's patterns took (core.patterns)
        self.dense_accuracy: float | None = None
        self.accuracy: float | None = None  # of the model as it is now, when known
        self.current_run: RunRecord | None = None  # the run whose weights the model holds now

    # --- what it holds ----------------------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        return self.state.model

    @property
    def device(self) -> torch.device:
        return self.state.device

    @property
    def layer_names(self) -> list[str]:
        return self.state.layer_names

    @property
    def dense_size(self) -> float:
        return self.state.dense_size

    @property
    def is_dense(self) -> bool:
        """The model holds the weights it was opened with (nothing pruned or finetuned since)."""
        return self.current_run is None

    @property
    def train(self) -> Iterable | None:
        return self.data.train if self.data is not None else None

    def example_input(self) -> torch.Tensor:
        return self.state.example_input()

    def current_size(self) -> float:
        return self.state.current_size()

    def percent(self, size_mib: float) -> float:
        return self.state.percent(size_mib)

    def set_regrow(self, regrow: bool) -> None:
        """True: the zeros present at load are not held (finetuning may grow them back)."""
        self.state.set_regrow(regrow, dense=self.is_dense)

    def layers(self):
        return self.state.layers()

    def units(self, report: Report = ignore, cancel: threading.Event | None = None):
        """What a plan of the session's method names (core.methods.Unit), unprunable ones with why; a
        listing that takes long (channel groups) reports progress and can be cancelled."""
        self.example_input() if self.data is not None else None
        return self.method.units(self.state, report, cancel)

    def unit_names(self) -> list[str]:
        return [unit.name for unit in self.units() if unit.prunable]

    # --- targets and method ---------------------------------------------------------------------------
    def set_target(self, name: str, value: float) -> float:
        self.targets[name] = round(min(max(float(value), 0.0), 1.0), 4)
        return self.targets[name]

    def set_method(self, name: str) -> None:
        """Prune by the method called `name` from now on (UserError for an unknown name, or for a method
        that needs training data when the session has none)."""
        method = get_method(name)
        if method.needs_data and self.data is None:
            raise UserError(f"the {method.name} method needs training data: give a data spec (--data)")
        self.method = method

    def apply_profile(self, profile: Profile, method: str | None = None) -> Resolved:
        """Targets become the profile's (unlisted layers 0), pruned by its method (or `method`), its glob
        keys resolved against the method's units (core.patterns). Unknown or unprunable names, and
        patterns that match nothing, raise UserError. Returns what each pattern took (also `resolved`)."""
        self.set_method(method or profile.method)
        context = f"profile '{profile.name}': "
        self.example_input() if self.data is not None else None
        resolved = self.method.resolve(self.state, profile.sparsity, context)
        self.check_targets(resolved.targets, context)
        check_layer_names(profile.bits, self.layer_names, f"profile '{profile.name}' [bits]: ")
        self.targets = {name: resolved.targets.get(name, 0.0) for name in self.layer_names}
        self.layer_bits = dict(profile.bits)
        self.profile_name, self.resolved = profile.name, resolved
        return resolved

    def check_targets(self, targets: dict[str, float], context: str = "") -> None:
        self.method.check(self.state, targets, context)

    def profile(self, name: str, description: str | None = None) -> Profile:
        sparsity = {layer: s for layer, s in self.targets.items() if s > 0}
        return Profile(name, sparsity, self.label, description, self.method.name, dict(self.layer_bits))

    def plan(self) -> Plan:
        return Plan(self.method.name, {name: s for name, s in self.targets.items() if s > 0})

    def recipe(self, **parts) -> Recipe:
        """A recipe of the session's plan and name, with `parts` (recovery=..., finetune=...) replaced."""
        return replace(Recipe(plan=self.plan(), name=self.profile_name), **parts)

    def projection(self, targets: dict[str, float] | None = None, start: str = "dense") -> Projection:
        """What pruning to `targets` (default: the session's) would give, nothing pruned."""
        targets = dict(self.targets if targets is None else targets)
        start = start if not self.is_dense else "dense"
        return self.method.projection(self.state, targets, start, self.train)

    def projected_size(self, targets: dict[str, float] | None = None, start: str = "dense") -> float:
        return self.projection(targets, start).size_mib

    def kept_count(self, name: str, target: float) -> int:
        return self.method.kept_count(self.state, name, target, self.train)

    def weight_cut(self, name: str, target: float) -> float | None:
        return self.method.weight_cut(self.state, name, target, self.train)

    # --- steps --------------------------------------------------------------------------------------------
    def _require_data(self) -> Splits:
        if self.data is None:
            raise UserError("no data: give a data spec to evaluate, scan or finetune")
        return self.data

    def evaluate(self, report: Report = ignore, cancel: threading.Event | None = None) -> float:
        """The accuracy of the model as it is now."""
        self.accuracy = evaluate(self.model, self._require_data().eval, report, cancel)
        if self.is_dense and self.dense_accuracy is None:
            self.dense_accuracy = self.accuracy
        return self.accuracy

    def prune(self, recipe: Recipe | None = None, cancel: threading.Event | None = None) -> RunRecord:
        """Prune to the recipe's plan (default: the session's plan and name) and record the run. Start
        "dense" restores the weights as opened first; "current" (fine-grained methods) prunes further
        from the weights as they are (Han et al. 2015's iterative pruning): sparsities only grow."""
        recipe = (recipe or self.recipe()).check()
        self.set_method(recipe.plan.method)
        start = recipe.start if not self.is_dense else "dense"
        self.check_targets(dict(recipe.plan.targets))
        parent = self.current_run if start == "current" else None
        self.method.prune(self.state, recipe.plan, start, self.train, cancel)
        pruned = bool(recipe.plan.active())
        self.accuracy = (self.dense_accuracy if start == "dense" else self.accuracy) if not pruned else None
        record = self.recorder.new("prune", replace(recipe, start=start), recipe.plan.targets, parent,
                                   self.dense_accuracy)  # fmt: skip
        record.status = "finished"
        self.recorder.ended(record)
        self.current_run = record
        return record

    def measured_before(self, report: Report = ignore, cancel: threading.Event | None = None) -> float:
        """Evaluate the model just pruned: the run's accuracy before finetuning."""
        accuracy = self.evaluate(report, cancel)
        if self.current_run is not None:
            self.current_run.accuracy_before = accuracy
            self.recorder.save(self.current_run)
        return accuracy

    def recalibrate(self, report: Report = ignore, cancel: threading.Event | None = None) -> float:
        """Recalibrate the BatchNorm statistics of the model as it is (weights and masks untouched) and
        measure it; the model keeps the new statistics and the current run records the accuracy."""
        data = self._require_data()
        if self.current_run is None:
            raise UserError("nothing is pruned: the statistics as opened already fit the weights")
        if not batch_norms(self.model):
            raise UserError("the model has no BatchNorm with running statistics: nothing to recalibrate")
        recalibrate_bn(self.model, data.train, report=report, cancel=cancel)
        self.state.changed()  # new statistics: scans of the model before are of another model
        self.accuracy = evaluate(self.model, data.eval, report, cancel)
        self.current_run.accuracy_recalibrated = self.accuracy
        self.recorder.ended(self.current_run)
        return self.accuracy

    def finetune(
        self, recipe: Recipe | None = None, report: Report = ignore, cancel: threading.Event | None = None
    ) -> FinetuneResult:
        """Finetune the model as it is with its masks held (an AGP recipe grows them to its targets);
        recorded as a run that continues the current one. Several processes when the recipe says so."""
        recipe = recipe or self.recipe()
        recipe = replace(recipe, seed=recipe.seed if recipe.seed is not None else new_seed()).check()
        if not recipe.finetune.epochs:
            raise UserError("a finetune needs epochs (1 or more)")
        self._require_data()
        parent = self.current_run
        gradual = recipe.recovery.gradual
        name = recipe.name if gradual or parent is None else parent.name
        profile = recipe.plan.targets if gradual else (parent.profile if parent else {})
        record = self.recorder.new("finetune", replace(recipe, name=f"{name}+ft{recipe.finetune.epochs}"),
                                   profile, parent, self.dense_accuracy)  # fmt: skip
        record.accuracy_before, record.epochs_planned, record.lr = (
            self.accuracy,
            recipe.finetune.epochs,
            recipe.finetune.lr,
        )
        record.schedule = recipe.recovery.schedule
        distill = recipe.recovery
        record.distill = (
            {"temperature": distill.temperature, "alpha": distill.alpha} if distill.distill else None
        )
        self.recorder.save(record)
        return self._run_finetune(recipe, record, report, cancel, None)

    def resume(
        self, run_id: str, report: Report = ignore, cancel: threading.Event | None = None,
        processes: Processes | None = None,
    ) -> tuple[FinetuneResult, Recipe]:  # fmt: skip
        """Go on with an interrupted finetune from its last completed epoch (same model required), with
        the recipe it started with (`processes` may change where it runs); the result and that recipe."""
        record = self.recorder.find(run_id)
        if record.kind != "finetune" or record.resume_file is None:
            raise UserError(f"run {run_id} has nothing to resume (status {record.status})")
        saved = self.training.resume_state(record, run_id)
        recipe = resume_recipe(saved, record)
        recipe = replace(recipe, processes=processes or recipe.processes).check()
        self.state.rebuild(tuple(stage_from_dict(stage) for stage in saved.get("stages", [])))
        self.state.masks = saved["masks"]
        self.targets = {name: record.profile.get(name, 0.0) for name in self.layer_names}
        return self._run_finetune(recipe, record, report, cancel, saved), recipe

    def _run_finetune(self, recipe: Recipe, record: RunRecord, report, cancel, resume) -> FinetuneResult:
        result = self.training.run(self._require_data(), recipe, record, report, cancel, resume)
        if result.best_accuracy is not None:
            self.accuracy = result.best_accuracy
            self.current_run = record
        return result

    def reset(self) -> None:
        """Back to the model as opened (targets are kept)."""
        self.state.reset()
        self.accuracy = self.dense_accuracy
        self.current_run = None
        self.quantized = None

    @contextmanager
    def transaction(self, restore_targets: bool = True):
        """Run a job; if it raises, put the model, masks and accuracy back as they were (and the
        targets, unless the front end lets them be edited while the job runs: a scan's)."""
        kept = self.accuracy, self.dense_accuracy, self.current_run, dict(self.targets), self.method
        try:
            with self.state.kept_on_failure():
                yield
        except BaseException:
            self.accuracy, self.dense_accuracy, self.current_run, targets, self.method = kept
            self.targets = targets if restore_targets else self.targets
            raise

    def trial(self, targets: dict[str, float], recalibrate: bool = False, cancel=None) -> float:
        """The accuracy of the weights as opened pruned to `targets` by the session's method (then
        recalibrated), as a prune measures it; the model is left so (use inside `state.scratch()`)."""
        data = self._require_data()
        self.method.prune(self.state, Plan(self.method.name, targets), "dense", self.train, cancel)
        if recalibrate:
            recalibrate_bn(self.model, data.train, cancel=cancel)
        return evaluate(self.model, data.eval, cancel=cancel)

    def scan(
        self,
        sparsities: Sequence[float] = DEFAULT_SPARSITIES,
        layers: Sequence[str] | None = None,
        report: Report = ignore,
        cancel: threading.Event | None = None,
        options: ScanOptions | None = None,
        processes: Processes = Processes(),
        use_cache: bool = True,
    ) -> ScanResult:
        """Scan the model as it is now (dense, or pruned and finetuned) by the session's method: each unit
        alone at each sparsity (`layers`: those units, checked; default every prunable unit), over several
        processes when `processes` says so. Units in the scan cache are served from it. On an
        evaluation subset or with recalibration the session's accuracy is kept."""
        data = self._require_data()
        options = options or ScanOptions()
        if layers is not None:
            self.check_targets({name: 1.0 for name in layers})
        names = list(layers) if layers is not None else self.unit_names()
        whole = options.eval_size is None and not options.recalibrate
        launcher = self.launch(processes, self.state)
        result = self.scans.scan(self.method, data, sparsities, names, report, cancel, options, launcher,
                                 self.accuracy if whole else None, use_cache)  # fmt: skip
        if result.base_accuracy is not None and whole:
            self.accuracy = result.base_accuracy
        return result

    def stored_scan(
        self, sparsities: Sequence[float] = DEFAULT_SPARSITIES, options: ScanOptions | None = None
    ):
        """The cached scan of the model as it is now by the session's method, if one was stored."""
        return self.scans.stored(self.model, self.method.name, sparsities, options)

    # --- the weights as pruned ------------------------------------------------------------------------
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

    # --- runs and cost --------------------------------------------------------------------------------
    def runs(self) -> list[RunRecord]:
        return self.recorder.runs()

    def find_run(self, run_id: str) -> RunRecord:
        return self.recorder.find(run_id)

    def annotate_run(self, run_id: str, name: str | None = None, note: str | None = None) -> RunRecord:
        record = self.recorder.annotate(run_id, name, note)
        current = self.current_run
        if current is not None and current.id == record.id:
            current.name, current.note = record.name, record.note
        return record

    def measure_run_cost(self, latency: bool = True) -> dict:
        """The measured cost of the model in hand against the model as opened, kept in the current run."""
        report = self.cost.measure(latency)
        if self.current_run is not None:
            self.current_run.cost = dict(report)
            self.recorder.save(self.current_run)
        return report

    def run_cost(self) -> dict:
        return cost_of(self.current_run)
