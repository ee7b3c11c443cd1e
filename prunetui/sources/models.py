"""Model specs: demo, vgg-cifar, torchvision:NAME[:CLASSES], timm:NAME[:CLASSES], module.path:factory,
file.py:factory.

Every model is built under a fixed seed (`INIT_SEED`; the caller's random state is restored), so a model
opened without a checkpoint has the same weights at every launch and earlier runs and cached scans still
match it. `LoadedModel.random_weights` says when prunetui loaded no weights into a model it built itself
(vgg-cifar, torchvision:, timm:); a factory of your own may load weights itself, so it is never flagged.
"""

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from prunetui.errors import UserError
from prunetui.model_specs import check_model_spec, is_builtin, is_file_source
from prunetui.sources.checkpoints import LoadedCheckpoint, load_checkpoint
from prunetui.sources.demo import DemoNet, demo_weights_path
from prunetui.sources.lenet import LENETS, lenet_weights_path
from prunetui.sources.vgg import VGG

MODEL_HELP = (
    "Model spec: 'demo' (default: a small CNN for the digits data, trained weights included), "
    "'vgg-cifar' (the lab's VGG for CIFAR-10), 'lenet-300-100' and 'lenet5' (Deep Compression's LeNets, "
    "trained on mnist5k, weights included), 'torchvision:NAME[:CLASSES]' (e.g. torchvision:resnet18:10, "
    "built without downloading weights), 'timm:NAME[:CLASSES]' (needs the timm extra; never downloads "
    "weights), 'module.path:factory' or 'path/to/file.py:factory' "
    "(your own code: a function returning an nn.Module)."
)

INIT_SEED = 0
# built-in specs opened with trained weights shipped in the package when no --checkpoint is given
SHIPPED_WEIGHTS = {"demo": demo_weights_path, **{spec: partial(lenet_weights_path, spec) for spec in LENETS}}
RANDOM_WEIGHTS_NOTE = (
    f"random weights (no --checkpoint): initialised with seed {INIT_SEED}, the same at every launch"
)


@dataclass(frozen=True)
class LoadedModel:
    """A built model (eval mode, CPU), its display label, and where its weights came from."""

    model: nn.Module
    label: str
    random_weights: bool  # a built-in spec opened without --checkpoint: seeded initial weights
    checkpoint: LoadedCheckpoint | None = None  # what --checkpoint held (masks, chosen key, note)

    @property
    def notes(self) -> list[str]:
        """Lines for the user (the CLI prints them to stderr, the TUI logs them)."""
        notes = [self.checkpoint.note] if self.checkpoint is not None and self.checkpoint.note else []
        return [*notes, RANDOM_WEIGHTS_NOTE] if self.random_weights else notes


def open_model(
    spec: str = "demo", checkpoint: str | None = None, checkpoint_key: str | None = None
) -> LoadedModel:
    """Build the model for `spec` (seeded) and load `checkpoint` (under `checkpoint_key`) if given; the
    demo gets its shipped weights without one. Raises UserError for a bad spec, file or key."""
    spec = spec.strip()
    if checkpoint_key is not None and checkpoint is None:
        raise UserError("--checkpoint-key goes with --checkpoint")
    model = build_model(spec)
    loaded = None
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint, checkpoint_key)
        _check_class_count(spec, checkpoint, loaded)
    elif spec in SHIPPED_WEIGHTS:
        load_checkpoint(model, str(SHIPPED_WEIGHTS[spec]()))
    random_weights = checkpoint is None and spec not in SHIPPED_WEIGHTS and is_builtin(spec)
    return LoadedModel(model.cpu().eval(), spec, random_weights, loaded)


def _check_class_count(spec: str, path: str, loaded: LoadedCheckpoint) -> None:
    """A zoo spec without a class count builds the zoo's default head (ImageNet's 1000): a checkpoint for
    another count then most likely wants that count, not its trained classifier re-initialised."""
    head, parts = loaded.new_head, spec.split(":")
    if head is None or head.checkpoint_classes is None or len(parts) != 2 or not is_builtin(spec):
        return
    raise UserError(
        f"checkpoint {path} is for {head.checkpoint_classes} classes but {spec} builds "
        f"{head.model_classes}: open it as {spec}:{head.checkpoint_classes} (or {spec}:{head.model_classes} "
        "to load all but its classifier)"
    )


def load_model(
    spec: str = "demo", checkpoint: str | None = None, checkpoint_key: str | None = None
) -> tuple[nn.Module, str]:
    """`open_model`, as (model in eval mode on CPU, display label)."""
    loaded = open_model(spec, checkpoint, checkpoint_key)
    return loaded.model, loaded.label


def build_model(spec: str) -> nn.Module:
    """The model for `spec`, initialised under seed INIT_SEED, no weights loaded."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(INIT_SEED)  # the CPU generator only: CUDA's is left alone
        return _build(spec)


def _build(spec: str) -> nn.Module:
    check_model_spec(spec)
    if spec == "demo":
        return DemoNet()
    if spec == "vgg-cifar":
        return VGG()
    if spec in LENETS:
        return LENETS[spec]()
    if spec.startswith("torchvision:"):
        return _torchvision_model(spec)
    if spec.startswith("timm:"):
        return _timm_model(spec)
    source, _, factory = spec.rpartition(":")
    module = _module_from_file(source) if is_file_source(source) else _import_module(source)
    return _call_factory(module, factory, spec)


def _zoo_spec(spec: str) -> tuple[str, dict[str, object]]:
    """`zoo:NAME[:CLASSES]` -> (NAME, {num_classes: CLASSES} or {})."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise UserError(f"bad model spec '{spec}': expected {parts[0]}:NAME or {parts[0]}:NAME:CLASSES")
    return parts[1], ({"num_classes": _class_count(parts[2], spec)} if len(parts) == 3 else {})


def _timm_model(spec: str) -> nn.Module:
    name, kwargs = _zoo_spec(spec)
    kwargs["pretrained"] = False  # never download anything
    try:
        import timm
    except ImportError as error:
        raise UserError(
            f"model spec '{spec}' needs the timm package: pip install 'prunetui[timm]' (or pip install timm)"
        ) from error
    if not timm.is_model(name):
        close = _close_names(name, timm.list_models(), "timm.list_models()")
        raise UserError(f"unknown timm model '{name}'{close}")
    try:
        return timm.create_model(name, **kwargs)
    except (TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"cannot build timm model '{name}': {error}") from error


def _torchvision_model(spec: str) -> nn.Module:
    name, kwargs = _zoo_spec(spec)
    kwargs["weights"] = None  # never download anything
    from torchvision import models

    if name not in models.list_models():
        raise UserError(f"unknown torchvision model '{name}'{_close_names(name, models.list_models())}")
    if "weights_backbone" in inspect.signature(models.get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None  # detection/segmentation models default to downloading one
    try:
        return models.get_model(name, **kwargs)
    except (TypeError, ValueError) as error:
        raise UserError(f"cannot build torchvision model '{name}': {error}") from error


def _class_count(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"bad model spec '{spec}': CLASSES must be a positive integer, got '{text}'")
    return int(text)


def _close_names(name: str, names: list[str], listing: str = "torchvision.models.list_models()") -> str:
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else f"; see {listing}"


def _import_module(module_path: str) -> ModuleType:
    _add_to_sys_path(os.getcwd())  # the console script does not put the working directory on sys.path
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as error:
        if error.name == module_path or module_path.startswith(f"{error.name}."):
            raise UserError(
                f"cannot import module '{module_path}': no module named '{error.name}'"
            ) from error
        raise UserError(f"importing '{module_path}' failed: {error}") from error
    except Exception as error:  # the user's own code raised while importing
        raise UserError(f"importing '{module_path}' failed: {type(error).__name__}: {error}") from error


def _module_from_file(file: str) -> ModuleType:
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"model file not found: {file}")
    name = f"prunetui_user_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"cannot load model file {file}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    _add_to_sys_path(str(path.parent))  # so the file can import its neighbours, as when run as a script
    sys.modules[name] = module  # dataclasses and pickling look the module up here
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:  # the user's own code raised while loading
        del sys.modules[name]
        raise UserError(f"loading {file} failed: {type(error).__name__}: {error}") from error
    return module


def _add_to_sys_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _call_factory(module: ModuleType, factory: str, spec: str) -> nn.Module:
    function = getattr(module, factory, None)
    if function is None:
        raise UserError(f"model spec '{spec}': no attribute '{factory}' in that module")
    if not callable(function):
        raise UserError(f"model spec '{spec}': '{factory}' is not callable")
    try:
        model = function()
    except Exception as error:  # the user's own code raised
        raise UserError(
            f"model spec '{spec}': {factory}() failed: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(model, nn.Module):
        raise UserError(f"model spec '{spec}': {factory}() returned {type(model).__name__}, not an nn.Module")
    return model
