"""Formatting and parsing of the values the TUI shows and reads (no widgets here)."""

import math
import re

from prunetui.core.speedup import measured_speedup

NOT_AVAILABLE = "n/a"
COMPOUND_RULE = "target = pruned + (1 - pruned) × beta"  # the blog's rule (core.pruning.compound)
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def accuracy_text(accuracy: float | None) -> str:
    return NOT_AVAILABLE if accuracy is None else f"{accuracy:.2f}%"


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def short_label(param_name: str) -> str:
    """The layer's name for tables, axes and titles: the parameter name without `.weight`, never cut
    (`layer1.0.conv1.weight` -> `layer1.0.conv1`; parameter names are unique, and so are these)."""
    return param_name.removesuffix(".weight") or param_name


def nice_ticks(low: float, high: float, count: int = 5, top: float | None = None) -> list[float]:
    """Round values (steps of 1, 2, 2.5 or 5 times a power of ten), about `count` of them, from at or
    below `low` to at or above `high`, none above `top` (100 for an accuracy axis)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    rough = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    ticks = [round(i * step, 10) for i in range(first, last + 1)]
    if top is not None:
        ticks = [t for t in ticks if t <= top + 1e-9] or [top]
    return ticks


def tick_text(value: float, ticks: list[float]) -> str:
    """A tick label with as many decimals as the step between ticks needs (2.5 -> one)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = next((d for d in range(4) if abs(round(step, d) - step) < 1e-9), 4)
    return f"{value:.{decimals}f}"


def filename_part(text: str) -> str:
    """`torchvision:resnet18` -> `torchvision-resnet18`: safe in a file name on every system."""
    return _SAFE_FILENAME.sub("-", text).strip("-") or "model"


def parse_fraction(text: str) -> float:
    """'0.85', '.85' or '85%' -> 0.85. Raise ValueError with a reason a user can act on."""
    raw = text.strip()
    if not raw:
        raise ValueError("type a number in [0, 1], e.g. 0.85 or 85%")
    is_percent = raw.endswith("%")
    try:
        value = float(raw.removesuffix("%").strip())
    except ValueError:
        raise ValueError(f"not a number: {raw}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {raw}")
    if is_percent:
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        hint = f" (for a percentage write {value:g}%)" if 1.0 < value <= 100.0 else ""
        raise ValueError(f"must be in [0, 1], got {raw}{hint}")
    return value


def parse_profile_name(text: str) -> str:
    name = text.strip()
    if not name:
        raise ValueError("type a name, e.g. run1")
    if _SAFE_FILENAME.search(name) or name.startswith("."):
        raise ValueError("use letters, digits, '.', '_' or '-' only (it becomes a file name)")
    return name


def parse_process_count(text: str, maximum: int) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        raise ValueError(f"processes must be a whole number, got {text.strip() or 'nothing'}") from None
    if not 1 <= count <= maximum:
        raise ValueError(f"processes must be between 1 and {maximum} (one per GPU), got {count}")
    return count


def measured_speedup_text(cost: dict) -> str | None:
    """The model in hand against dense, from its run's measured cost (core.speedup.measured_speedup):
    `1.54x`, or `~1.0x` within the timing's noise, as the log and the Runs tab say it. The header shows
    it for channel-pruned models only: masks leave a dense kernel's time as it was."""
    speedup = measured_speedup(cost)
    return speedup.short() if speedup is not None else None
