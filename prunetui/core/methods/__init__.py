"""Pruning methods by name: how a model is pruned, carried with the targets as a Plan through
profiles, scans, runs, exports and JSON. Adding a fine-grained criterion is one module here.

Two kinds: fine-grained criteria (`Criterion`: scores, masks, shapes unchanged) and structured
methods (`StructuredMethod`: whole channels removed, a smaller model). Callers branch with
`is_structured(method)`."""

from prunetui.core.methods.base import Criterion, Plan
from prunetui.core.methods.channel import Channel, StructuredMethod
from prunetui.core.methods.magnitude import Magnitude
from prunetui.core.methods.taylor import Taylor
from prunetui.errors import UserError

Method = Criterion | StructuredMethod
METHODS: dict[str, type[Criterion] | type[StructuredMethod]] = {
    method.name: method for method in (Magnitude, Taylor, Channel)
}
DEFAULT_METHOD = Magnitude.name


def get_method(name: str | None) -> Method:
    """The method called `name` (None: the default, magnitude). Unknown names raise UserError."""
    name = name or DEFAULT_METHOD
    if name not in METHODS:
        raise UserError(f"unknown pruning method '{name}'; known: {', '.join(METHODS)}")
    return METHODS[name]()


def is_structured(method: object) -> bool:
    """True for a method that removes whole channels (a smaller model, no masks)."""
    return bool(getattr(method, "structured", False))


__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Channel",
    "Criterion",
    "Method",
    "Plan",
    "StructuredMethod",
    "get_method",
    "is_structured",
]
