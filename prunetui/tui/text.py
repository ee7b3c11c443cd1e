"""Formatting and parsing of the values the TUI shows and reads (no widgets here)."""

import math
import re

NOT_AVAILABLE = "n/a"
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def accuracy_text(accuracy: float | None) -> str:
    return NOT_AVAILABLE if accuracy is None else f"{accuracy:.2f}%"


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def short_label(param_name: str) -> str:
    """A few characters for plot axes: backbone.conv3.weight -> conv3, features.0.weight -> f0."""
    parts = param_name.removesuffix(".weight").split(".")
    if parts[-1].isdigit() and len(parts) > 1:
        return parts[-2][:1] + parts[-1]
    return parts[-1][:8]


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
