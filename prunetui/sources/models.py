"""Model specs: demo, vgg-cifar, torchvision:NAME[:CLASSES], module.path:factory, file.py:factory."""

import difflib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from torch import nn

from prunetui.errors import UserError
from prunetui.sources.checkpoints import load_checkpoint
from prunetui.sources.demo import DemoNet, demo_weights_path
from prunetui.sources.vgg import VGG

MODEL_HELP = (
    "Model spec: 'demo' (default: a small CNN for the digits data, trained weights included), "
    "'vgg-cifar' (the lab's VGG for CIFAR-10), 'torchvision:NAME[:CLASSES]' (e.g. torchvision:resnet18:10, "
    "built without downloading weights), 'module.path:factory' or 'path/to/file.py:factory' "
    "(your own code: a function returning an nn.Module)."
)

_UNKNOWN = (
    "unknown model spec '{spec}': expected demo, vgg-cifar, torchvision:NAME[:CLASSES], "
    "module:factory or file.py:factory"
)
_MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def load_model(spec: str = "demo", checkpoint: str | None = None) -> tuple[nn.Module, str]:
    """Build the model for `spec`, load `checkpoint` if given (demo: the shipped weights when None).

    Returns the model in eval mode on CPU and a display label.
    """
    spec = spec.strip()
    model = build_model(spec)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    elif spec == "demo":
        load_checkpoint(model, str(demo_weights_path()))
    return model.cpu().eval(), spec


def build_model(spec: str) -> nn.Module:
    """The freshly initialised model for `spec`, no weights loaded."""
    if spec == "demo":
        return DemoNet()
    if spec == "vgg-cifar":
        return VGG()
    if spec.startswith("torchvision:"):
        return _torchvision_model(spec)
    source, _, factory = spec.rpartition(":")
    if not source or not _IDENTIFIER.match(factory):
        raise UserError(_UNKNOWN.format(spec=spec))
    if source.endswith(".py") or "/" in source or os.sep in source:
        return _call_factory(_module_from_file(source), factory, spec)
    if _MODULE_PATH.match(source):
        return _call_factory(_import_module(source), factory, spec)
    raise UserError(_UNKNOWN.format(spec=spec))


def _torchvision_model(spec: str) -> nn.Module:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise UserError(f"bad model spec '{spec}': expected torchvision:NAME or torchvision:NAME:CLASSES")
    name = parts[1]
    kwargs: dict[str, object] = {"weights": None}  # never download anything
    if len(parts) == 3:
        kwargs["num_classes"] = _class_count(parts[2], spec)
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


def _close_names(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()"


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
