"""Pruning methods by name, each with one lifecycle (core.methods.base.Method): fine-grained criteria
(magnitude, taylor: masks, shapes unchanged) and the structured `channel` method (whole channels
removed, a smaller model). Adding a fine-grained criterion is one module here and one line in
core.recipe.METHODS (what the CLI knows without torch)."""

from prunetui.core.methods.base import Criterion, Method, Projection, Unit
from prunetui.core.methods.channel import Channel
from prunetui.core.methods.fine_grained import FineGrained
from prunetui.core.methods.magnitude import MagnitudeMethod
from prunetui.core.methods.taylor import TaylorMethod
from prunetui.core.recipe import DEFAULT_METHOD, Plan, method_traits

METHODS: dict[str, type[Method]] = {
    method.name: method for method in (MagnitudeMethod, TaylorMethod, Channel)
}


def get_method(name: str | None) -> Method:
    """The method called `name` (None: the default, magnitude). Unknown names raise UserError."""
    name = name or DEFAULT_METHOD
    method_traits(name)  # raises for an unknown name
    return METHODS[name]()


__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Channel",
    "Criterion",
    "FineGrained",
    "Method",
    "Plan",
    "Projection",
    "Unit",
    "get_method",
]
