"""Pruning methods by name: how a model is pruned, carried with the targets as a Plan through
profiles, scans, runs, exports and JSON. Adding a fine-grained criterion is one module here."""

from prunetui.core.methods.base import Criterion, Plan
from prunetui.core.methods.magnitude import Magnitude
from prunetui.core.methods.taylor import Taylor
from prunetui.errors import UserError

METHODS: dict[str, type[Criterion]] = {method.name: method for method in (Magnitude, Taylor)}
DEFAULT_METHOD = Magnitude.name


def get_method(name: str | None) -> Criterion:
    """The criterion called `name` (None: the default, magnitude). Unknown names raise UserError."""
    name = name or DEFAULT_METHOD
    if name not in METHODS:
        hint = " (channel pruning is not built yet)" if name == "channel" else ""
        raise UserError(f"unknown pruning method '{name}'{hint}; known: {', '.join(METHODS)}")
    return METHODS[name]()


__all__ = ["Criterion", "DEFAULT_METHOD", "METHODS", "Plan", "get_method"]
