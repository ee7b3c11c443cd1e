"""What `prunetui info` adds about the units a plan sets: the channel groups (`--method channel`), and
what a profile's patterns resolved to (core.patterns), as lines and as JSON keys.

- `groups`: every channel group in model order, `{name, channels, members, prunable, reason}`: the
  names a channel profile sets (a glob matches these names), the layers whose outputs go with each,
  and for a group that cannot be pruned, why (core.channel).
- `patterns`: one entry per glob of the profile, `{pattern, value, count, names, unprunable,
  overridden}`; `targets`: every unit with a target above 0 once they are resolved (exact names).
"""

from rich import box
from rich.console import Console
from rich.table import Table

from prunetui.core.session import Session

MEMBERS_SHOWN = 3


def groups_json(session: Session) -> dict:
    """`groups` for the channel method ({} for others: their units are the `layers`)."""
    if session.method.noun != "groups":
        return {}
    return {
        "groups": [
            {
                "name": unit.name,
                "channels": unit.size,
                "members": list(unit.members),
                "prunable": unit.prunable,
                "reason": unit.reason,
            }
            for unit in session.units()
        ]
    }


def targets_json(session: Session) -> dict:
    """`patterns` (what each glob of the profile took) and `targets` (every unit above 0, resolved)."""
    return {
        "patterns": [match.as_json() for match in session.resolved.patterns],
        "targets": {name: value for name, value in session.targets.items() if value > 0},
    }


def _members(members: list[str]) -> str:
    shown = ", ".join(name.removesuffix(".weight") for name in members[1 : MEMBERS_SHOWN + 1])
    more = len(members) - 1 - MEMBERS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def print_groups(console: Console, groups: list[dict]) -> None:
    """The prunable groups as a table (name, channels, the other layers removed with it), then one line
    per group that cannot be pruned, with why."""
    prunable = [g for g in groups if g["prunable"]]
    table = Table(title=f"{len(prunable)} prunable channel groups", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Group (set it in a profile)", no_wrap=True)
    table.add_column("Channels", justify="right")
    table.add_column("Also removes the outputs of")
    for group in prunable:
        table.add_row(group["name"], str(group["channels"]), _members(group["members"]))
    console.print(table)
    fixed = [g for g in groups if not g["prunable"]]
    if fixed:
        console.print(f"{len(fixed)} group{'s' if len(fixed) > 1 else ''} cannot be pruned:", highlight=False)
    for group in fixed:
        console.print(f"  {group['name']}: {group['reason']}", markup=False, highlight=False, soft_wrap=True)
