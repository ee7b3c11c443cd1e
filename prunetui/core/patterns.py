"""Profile keys that set many units at once: shell-style globs (`"*" = 0.3`, `"layer3.*" = 0.5`).

A key holding `*`, `?` or `[` is a pattern, matched with `fnmatch.fnmatchcase` (case-sensitive; `*`
crosses dots) against the names of the units the profile's method prunes: channel groups for the
channel method, prunable tensors for fine-grained ones (core.methods `Method.units`). Rules:

- an exact name always wins over any pattern;
- among the patterns matching a unit, the most specific wins: the most literal characters (those not
  part of a wildcard: `layer3.*` has 7, `*` none); two equally specific patterns with different values
  for one unit are an error naming both;
- a pattern sets only the units that can be pruned; those it matches that cannot are left at 0 and
  counted (`"*" = 0.3` must not fail on the classifier);
- a pattern that matches no unit, or (with a value above 0) only units that cannot be pruned, is an
  error naming the closest units.

Resolved once, when a profile is applied (core.session `Session.apply_profile`), against the units of
the model as opened; the plan then holds exact names only, so runs, exports and replays never see a
pattern.
"""

import difflib
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prunetui.errors import UserError

_WILDCARD = re.compile(r"\*|\?|\[[^\]]*\]")


def is_pattern(key: str) -> bool:
    """True for a key holding a wildcard (`*`, `?` or `[`)."""
    return any(char in key for char in "*?[")


def specificity(pattern: str) -> int:
    """The literal characters of `pattern`: what is left once every `*`, `?` and `[...]` is removed."""
    return len(_WILDCARD.sub("", pattern))


@dataclass(frozen=True)
class PatternMatch:
    """What one pattern set: `names` (prunable units it won, model order) to `value`; `unprunable`: units
    it matched that cannot be pruned (left at 0); `overridden`: units it matched that an exact name or a
    more specific pattern set."""

    pattern: str
    value: float
    names: tuple[str, ...]
    unprunable: tuple[str, ...] = ()
    overridden: int = 0

    def line(self, noun: str) -> str:
        """`"layer3.*" = 0.5 -> 12 groups (3 set by more specific keys)`; `noun`: groups or layers."""
        count = len(self.names)
        text = f'"{self.pattern}" = {self.value:g} -> {count} {noun if count != 1 else noun.rstrip("s")}'
        notes = []
        if self.unprunable:
            notes.append(f"{len(self.unprunable)} that cannot be pruned left at 0")
        if self.overridden:
            notes.append(f"{self.overridden} set by more specific keys")
        return text + (f" ({'; '.join(notes)})" if notes else "")

    def as_json(self) -> dict:
        return {
            "pattern": self.pattern,
            "value": self.value,
            "count": len(self.names),
            "names": list(self.names),
            "unprunable": list(self.unprunable),
            "overridden": self.overridden,
        }


@dataclass(frozen=True)
class Resolved:
    """A profile's keys as exact unit names: `targets` (name -> value, the exact keys and every unit a
    pattern won) and what each pattern took, in the profile's order."""

    targets: dict[str, float]
    patterns: tuple[PatternMatch, ...] = ()


def _closest(pattern: str, names: Sequence[str]) -> list[str]:
    literal = _WILDCARD.sub("", pattern)
    return difflib.get_close_matches(literal, list(names), n=3, cutoff=0.4) or list(names)[:3]


def _winner(name: str, matching: list[str], sparsity: Mapping[str, float], context: str) -> str:
    """The most specific of the patterns `matching` unit `name`; UserError on a tie of different values."""
    best = max(specificity(p) for p in matching)
    top = [p for p in matching if specificity(p) == best]
    if len({float(sparsity[p]) for p in top}) > 1:
        shown = " and ".join(f'"{p}" = {sparsity[p]:g}' for p in top[:2])
        raise UserError(
            f"{context}{shown} are equally specific for {name}: give a longer pattern or its exact name"
        )
    return top[0]


def resolve(
    sparsity: Mapping[str, float], units: Sequence, context: str = "", noun: str = "units"
) -> Resolved:
    """`sparsity` (profile keys -> values) with every pattern resolved against `units` (objects with
    `name` and `prunable`, core.methods.Unit, in model order). Exact keys are passed on unchecked (the
    method's `check` judges them). Raises UserError for a pattern that matches nothing or only units that
    cannot be pruned, and for equally specific patterns that disagree (`context` starts the message)."""
    patterns = [key for key in sparsity if is_pattern(key)]
    targets = {key: float(value) for key, value in sparsity.items() if not is_pattern(key)}
    if not patterns:
        return Resolved(targets)
    won: dict[str, list[str]] = {p: [] for p in patterns}
    unprunable: dict[str, list[str]] = {p: [] for p in patterns}
    matched: dict[str, int] = dict.fromkeys(patterns, 0)
    names = [unit.name for unit in units]
    for unit in units:
        matching = [p for p in patterns if fnmatch.fnmatchcase(unit.name, p)]
        for p in matching:
            matched[p] += 1
        if not matching or unit.name in targets:
            continue
        winner = _winner(unit.name, matching, sparsity, context)
        (won if unit.prunable else unprunable)[winner].append(unit.name)
    found = []
    for p in patterns:
        value = float(sparsity[p])
        if not matched[p]:
            raise UserError(f'{context}"{p}" matches no {noun}; closest: {", ".join(_closest(p, names))}')
        prunable = [unit for unit in units if unit.prunable and fnmatch.fnmatchcase(unit.name, p)]
        if value > 0 and not prunable:
            unit = next(unit for unit in units if fnmatch.fnmatchcase(unit.name, p))
            raise UserError(
                f'{context}"{p}" matches only {noun} that cannot be pruned ({unit.name}: {unit.reason})'
            )
        overridden = matched[p] - len(won[p]) - len(unprunable[p])
        found.append(PatternMatch(p, value, tuple(won[p]), tuple(unprunable[p]), overridden))
        targets.update(dict.fromkeys(won[p], value))
    return Resolved(targets, tuple(found))
