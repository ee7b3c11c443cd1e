"""A recipe: the whole description of one run, the unit of work of both front ends.

A recipe says how and how much to prune (the plan: a method and per-layer targets), where pruning starts
(the dense weights, or the weights as they are), how accuracy is recovered (BN recalibration, an AGP
schedule, distillation), how the finetune trains, over how many processes, the files the run writes,
and the seed it runs with. It is frozen, torch-free (the CLI checks one before torch is imported) and
validated in one place, `Recipe.check`, which holds every cross-option rule and refuses a combination
that cannot work in one line that says why, before any work. Run records, resume states and exports
store it with its version (`as_dict` / `recipe_from_dict`), so a run can be replayed.

Defaults are written here once: PRODUCT.md's finetune (SGD lr 0.01, momentum 0.9, weight decay 1e-4),
Zhu & Gupta's AGP over the first 75% of the steps, Hinton's distillation at T 4 with the teacher's term
weighted 0.9.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace

from prunetui.errors import UserError

RECIPE_VERSION = 2  # 2: the quantization part and Outputs.compress / onnx_int8 (version 1 still read)
DEFAULT_EPOCHS = 5  # a finetune asked for without a count (PRODUCT.md); `Finetune.epochs` 0 is none
SCHEDULES = ("oneshot", "agp")
STARTS = ("dense", "current")
AMP_MODES = ("bf16", "fp16")
EPOCHS_MAX = 1000
LR_MAX = 10.0
ENDPOINT = re.compile(r"\S+:\d{1,5}")


@dataclass(frozen=True)
class MethodTraits:
    """What a pruning method can do, known without torch (core.methods holds the implementations;
    tests/core/test_methods.py keeps the two registries equal)."""

    summary: str  # for help texts
    structured: bool  # removes whole channels: a smaller model instead of masks
    needs_data: bool  # scores weights with training batches
    gradual: bool  # an AGP schedule can grow its masks step by step
    prunes_further: bool  # can prune further from the weights as they are (start "current")


METHODS: dict[str, MethodTraits] = {
    "magnitude": MethodTraits("the lab's |w| (default)", False, False, True, True),
    "taylor": MethodTraits("|w * dL/dw| over a few training batches", False, True, True, True),
    "channel": MethodTraits(
        "whole output channels removed (structured: a smaller model)", True, False, False, False
    ),
}
DEFAULT_METHOD = "magnitude"


class RecipeError(UserError):
    """A recipe that cannot run, with the reason in one line; `fields`: the recipe fields at fault
    ("recovery.schedule", "finetune.epochs", ...), which a front end names as its own flags or fields."""

    def __init__(self, message: str, *fields: str):
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True)
class Plan:
    """How and how much: a method's name and per-layer targets (unlisted layers are 0). For a
    fine-grained method a target is the fraction of the tensor's weights pruned; for `channel`, the
    fraction of a group's output channels removed."""

    method: str = DEFAULT_METHOD
    targets: Mapping[str, float] = field(default_factory=dict)

    def active(self) -> dict[str, float]:
        """The layers the plan prunes (target > 0)."""
        return {name: float(s) for name, s in self.targets.items() if s > 0}

    @property
    def traits(self) -> MethodTraits:
        return method_traits(self.method)


@dataclass(frozen=True)
class Recovery:
    """How accuracy is recovered; all off by default (the lab's numbers exact)."""

    # recalibrate the BatchNorm statistics once pruning reaches the targets: after a one-shot prune,
    # or after the finetune whose AGP schedule grew the masks
    recalibrate_bn: bool = False
    schedule: str = "oneshot"  # "agp": no one-shot prune; the finetune grows the masks to the targets
    agp_share: float = 0.75  # the part of the finetune's steps the AGP schedule takes
    distill: bool = False  # learn from the model as it was opened (knowledge distillation)
    temperature: float = 4.0
    alpha: float = 0.9  # weight of the teacher's soft term

    @property
    def gradual(self) -> bool:
        return self.schedule == "agp"


@dataclass(frozen=True)
class Finetune:
    """PRODUCT.md's finetune: SGD with momentum and weight decay, cosine over every step, the best
    epoch kept. `epochs` 0: no finetune."""

    epochs: int = 0
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    amp: str | None = None  # "bf16" or "fp16" autocast, None for fp32


@dataclass(frozen=True)
class Processes:
    """Where a finetune runs: this process (nproc 1), or torchrun over `nproc` processes per machine on
    `nnodes` machines meeting at `endpoint` (HOST:PORT)."""

    nproc: int = 1
    nnodes: int = 1
    endpoint: str | None = None

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1 or self.endpoint is not None


@dataclass(frozen=True)
class Quantization:
    """Weight quantization once pruning and finetuning are done, the masks kept (core.quantize); `kind`
    None: none. "kmeans": Deep Compression's weight sharing (Han et al. 2016), `bits` a layer (None: Han's
    8 for convolutions, 5 for fully connected layers), `layer_bits` overriding it per layer, the
    centroids then finetuned `epochs` epochs at `lr` (core.centroids). "int8": per-channel, 8 bits."""

    kind: str | None = None
    bits: int | None = None
    layer_bits: Mapping[str, int] = field(default_factory=dict)
    epochs: int = 0
    lr: float = 0.01

    @property
    def active(self) -> bool:
        return self.kind is not None


@dataclass(frozen=True)
class Outputs:
    """Files the run writes when it ends (a resumed run writes them too). `compress`: the checkpoint is
    written as a .ptz file (core.compressed); `onnx_int8`: an int8 ONNX model (core.onnx_int8)."""

    checkpoint: str | None = None
    onnx: str | None = None
    overwrite: bool = False
    compress: bool = False
    onnx_int8: str | None = None


@dataclass(frozen=True)
class Recipe:
    plan: Plan = Plan()
    start: str = "dense"  # "dense": prune the weights as opened; "current": prune further
    recovery: Recovery = Recovery()
    finetune: Finetune = Finetune()
    processes: Processes = Processes()
    outputs: Outputs = Outputs()
    quantization: Quantization = Quantization()
    name: str = "custom"  # the run's name (the profile's)
    seed: int | None = None  # None: drawn when the run starts, and recorded

    def check(self) -> "Recipe":
        """Every rule a recipe must keep, each refusal one line (RecipeError). Returns the recipe."""
        _check_plan(self.plan, self.start)
        _check_finetune(self.finetune)
        _check_recovery(self.recovery, self.plan, self.finetune)
        _check_processes(self.processes, self.finetune)
        _check_quantization(self.quantization)
        _check_outputs(self.outputs)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise RecipeError(f"the seed must be a whole number, got {self.seed!r}", "seed")
        return self

    def with_targets(self, targets: Mapping[str, float], method: str | None = None) -> "Recipe":
        return replace(self, plan=Plan(method or self.plan.method, dict(targets)))

    def as_dict(self) -> dict:
        """Plain JSON data, with the version."""
        data = asdict(self)
        data["plan"]["targets"] = dict(self.plan.targets)
        data["quantization"]["layer_bits"] = dict(self.quantization.layer_bits)
        return {"version": RECIPE_VERSION, **data}


def method_traits(name: str) -> MethodTraits:
    if name not in METHODS:
        raise RecipeError(f"unknown pruning method '{name}'; known: {', '.join(METHODS)}", "plan.method")
    return METHODS[name]


def _check_plan(plan: Plan, start: str) -> None:
    traits = method_traits(plan.method)
    for name, value in plan.targets.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise RecipeError(
                f"the target of {name} must be a number in [0, 1], got {value!r}", "plan.targets"
            )
    if start not in STARTS:
        raise RecipeError(f"a prune starts from 'dense' or 'current', got {start!r}", "start")
    if start == "current" and not traits.prunes_further:
        raise RecipeError(
            f"{plan.method} pruning starts from the dense weights; pruning further from the current "
            "weights is for fine-grained methods (magnitude, taylor)",
            "start",
            "plan.method",
        )


def check_epochs(epochs: int, allow_zero: bool = True) -> int:
    """Finetune epochs: 0 (no finetune, with `allow_zero`) or 1..EPOCHS_MAX. ValueError otherwise."""
    low = 0 if allow_zero else 1
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not low <= epochs <= EPOCHS_MAX:
        raise ValueError(f"epochs must be a whole number from {low} to {EPOCHS_MAX}, got {epochs}")
    return epochs


def check_learning_rate(lr: float) -> float:
    """Learning rate in (0, LR_MAX]. ValueError otherwise."""
    if isinstance(lr, bool) or not (isinstance(lr, int | float) and math.isfinite(lr) and 0.0 < lr <= LR_MAX):
        raise ValueError(f"learning rate must be in (0, {LR_MAX:g}], got {lr}")
    return float(lr)


def _check_finetune(finetune: Finetune) -> None:
    try:
        check_epochs(finetune.epochs)
    except ValueError as error:
        raise RecipeError(str(error), "finetune.epochs") from None
    try:
        check_learning_rate(finetune.lr)
    except ValueError as error:
        raise RecipeError(str(error), "finetune.lr") from None
    if not 0.0 <= finetune.momentum < 1.0:
        raise RecipeError(f"momentum must be in [0, 1), got {finetune.momentum}", "finetune.momentum")
    if not finetune.weight_decay >= 0.0:
        raise RecipeError(
            f"weight decay must be 0 or more, got {finetune.weight_decay}", "finetune.weight_decay"
        )
    if finetune.amp is not None and finetune.amp not in AMP_MODES:
        raise RecipeError(f"amp must be one of {', '.join(AMP_MODES)}, got {finetune.amp!r}", "finetune.amp")


def _check_recovery(recovery: Recovery, plan: Plan, finetune: Finetune) -> None:
    if recovery.schedule not in SCHEDULES:
        raise RecipeError(f"unknown schedule '{recovery.schedule}': oneshot or agp", "recovery.schedule")
    if not 0.0 < recovery.agp_share <= 1.0:
        raise RecipeError(
            f"the AGP share of the finetune must be in (0, 1], got {recovery.agp_share}", "recovery.agp_share"
        )
    if not recovery.temperature > 0:
        raise RecipeError(
            f"the distillation temperature must be above 0, got {recovery.temperature}",
            "recovery.temperature",
        )
    if not 0.0 <= recovery.alpha <= 1.0:
        raise RecipeError(
            f"the distillation weight alpha must be in [0, 1], got {recovery.alpha}", "recovery.alpha"
        )
    if recovery.gradual:
        if not finetune.epochs:
            raise RecipeError(
                "an AGP schedule prunes while finetuning: it needs finetune epochs",
                "recovery.schedule",
                "finetune.epochs",
            )
        if not plan.active():
            raise RecipeError(
                "an AGP schedule needs targets above 0 to grow the masks to",
                "recovery.schedule",
                "plan.targets",
            )
        if not plan.traits.gradual:
            raise RecipeError(
                f"{plan.method} pruning removes channels in one step: an AGP schedule grows "
                "fine-grained masks (use the oneshot schedule, or magnitude or taylor with AGP)",
                "recovery.schedule",
                "plan.method",
            )
    if recovery.distill and not finetune.epochs:
        raise RecipeError(
            "distillation happens while finetuning: it needs finetune epochs",
            "recovery.distill",
            "finetune.epochs",
        )


def _check_processes(processes: Processes, finetune: Finetune) -> None:
    if isinstance(processes.nproc, bool) or not isinstance(processes.nproc, int) or processes.nproc < 1:
        raise RecipeError(f"the process count must be 1 or more, got {processes.nproc}", "processes.nproc")
    if isinstance(processes.nnodes, bool) or not isinstance(processes.nnodes, int) or processes.nnodes < 1:
        raise RecipeError(f"the machine count must be 1 or more, got {processes.nnodes}", "processes.nnodes")
    if processes.nnodes > 1 and not processes.endpoint:
        raise RecipeError(
            "several machines need a meeting point HOST:PORT, the same on every machine",
            "processes.nnodes",
            "processes.endpoint",
        )
    if processes.endpoint is not None and not ENDPOINT.fullmatch(processes.endpoint):
        raise RecipeError(
            f"bad meeting point '{processes.endpoint}': expected HOST:PORT", "processes.endpoint"
        )
    if processes.distributed and not finetune.epochs:
        raise RecipeError(
            "several processes share a finetune: they need finetune epochs",
            "processes.nproc",
            "finetune.epochs",
        )


QUANTIZATION_KINDS = ("kmeans", "int8")
BITS_MAX = 8  # k-means indices are stored as bytes (core.ptz)


def _check_quantization(quantization: Quantization) -> None:
    kind, bits = quantization.kind, [quantization.bits, *quantization.layer_bits.values()]
    if kind is not None and kind not in QUANTIZATION_KINDS:
        raise RecipeError(f"unknown quantization '{kind}': kmeans or int8", "quantization.kind")
    for value in (b for b in bits if b is not None):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= BITS_MAX:
            raise RecipeError(
                f"bits must be a whole number from 1 to {BITS_MAX}, got {value!r}", "quantization.bits"
            )
    if set(bits) != {None} and kind != "kmeans" and (kind is None or set(bits) - {None, 8}):
        raise RecipeError("bits are for k-means weight sharing (int8 is 8 bits)", "quantization.bits")
    try:
        check_epochs(quantization.epochs)
        check_learning_rate(quantization.lr)
    except ValueError as error:
        raise RecipeError(f"centroid finetune: {error}", "quantization.epochs") from None
    if quantization.epochs and kind != "kmeans":
        raise RecipeError(
            "a centroid finetune moves k-means centroids: it needs kmeans", "quantization.epochs"
        )


def _check_outputs(outputs: Outputs) -> None:
    if outputs.compress and not outputs.checkpoint:
        raise RecipeError("compression writes the checkpoint file as .ptz: name it", "outputs.compress")
    paths = [p for p in (outputs.checkpoint, outputs.onnx, outputs.onnx_int8) if p]
    if len(set(paths)) < len(paths):
        raise RecipeError("two outputs name the same file", "outputs.onnx_int8")


_PARTS = {
    "plan": Plan,
    "recovery": Recovery,
    "finetune": Finetune,
    "processes": Processes,
    "outputs": Outputs,
    "quantization": Quantization,
}


def recipe_from_dict(data: Mapping) -> Recipe:
    """The recipe `Recipe.as_dict` wrote (any version up to RECIPE_VERSION). A newer version or an
    unknown key is a RecipeError naming it: a newer prunetui wrote it."""
    version = data.get("version", RECIPE_VERSION)
    if not isinstance(version, int) or version > RECIPE_VERSION:
        raise RecipeError(f"recipe version {version} is newer than this prunetui reads ({RECIPE_VERSION})")
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(data) - known - {"version"})
    if unknown:
        raise RecipeError(f"unknown recipe keys: {', '.join(unknown)}")
    values = {}
    for key, value in data.items():
        if key in _PARTS:
            values[key] = _part(_PARTS[key], value, key)
        elif key != "version":
            values[key] = value
    return Recipe(**values)


def _part(kind: type, value: object, key: str):
    if not isinstance(value, Mapping):
        raise RecipeError(f"recipe '{key}' must be a table")
    names = {f.name for f in fields(kind)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise RecipeError(f"unknown recipe keys in '{key}': {', '.join(unknown)}")
    return kind(**value)
