"""The forms a model spec takes, checked without importing torch: a typo (`--model nosuch`) is one
`error:` line before the workbench draws anything. sources.models builds what a spec names (this module is outside sources, whose package imports torch)."""

import os
import re

from prunetui.errors import UserError

BUILTIN_MODELS = ("demo", "vgg-cifar", "lenet-300-100", "lenet5")  # sources.models builds these
ZOOS = ("torchvision:", "timm:")
UNKNOWN = (
    "unknown model spec '{spec}': expected demo, vgg-cifar, torchvision:NAME[:CLASSES], "
    "timm:NAME[:CLASSES], lenet-300-100, lenet5, module:factory or file.py:factory"
)
MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def is_builtin(spec: str) -> bool:
    """A model prunetui builds itself (or from a model zoo), not the user's code."""
    return spec in BUILTIN_MODELS or spec.startswith(ZOOS)


def is_file_source(source: str) -> bool:
    """`path/to/file.py` in `path/to/file.py:factory` (else a module path)."""
    return source.endswith(".py") or "/" in source or os.sep in source


def check_model_spec(spec: str) -> None:
    """UserError (UNKNOWN) for a spec of no known form; a known form may still fail to build."""
    if is_builtin(spec):
        return
    source, _, factory = spec.rpartition(":")
    if source and IDENTIFIER.match(factory) and (is_file_source(source) or MODULE_PATH.match(source)):
        return
    raise UserError(UNKNOWN.format(spec=spec))
