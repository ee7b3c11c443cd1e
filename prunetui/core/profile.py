"""Sparsity profiles as TOML: load, validate, save atomically.

A key is a unit's exact name or a glob (`"*" = 0.3`, `"layer3.*" = 0.5`); globs are resolved against
the units of the model's method when the profile is applied (core.patterns, `Session.apply_profile`).
"""

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from prunetui.core.atomic import write_atomic
from prunetui.core.methods import DEFAULT_METHOD, METHODS
from prunetui.core.recipe import BITS_MAX
from prunetui.errors import UserError

MAX_PROFILE_BYTES = 4 * 2**20  # a profile is a few lines; anything this big is not one
# `run` is the table an export's side file adds (figures of the run; a profile reader skips it)
TOP_LEVEL_KEYS = ("name", "method", "model", "description", "sparsity", "bits", "run")


@dataclass
class Profile:
    name: str
    sparsity: dict[str, float] = field(default_factory=dict)  # unlisted layers are 0
    model: str | None = None
    description: str | None = None
    method: str = "magnitude"  # a core.methods name
    bits: dict[str, int] = field(default_factory=dict)  # k-means bits by layer ([bits]; core.quantize)


def _flatten(table: Mapping, prefix: str = "") -> dict[str, object]:
    """Undo TOML's nesting of unquoted dotted keys: backbone.conv3.weight = 0.8 -> one flat key."""
    flat = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def _check_value(layer: str, value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{source}: sparsity of {layer} must be a number in [0, 1], got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UserError(f"{source}: sparsity of {layer} must be in [0, 1], got {value}")
    return float(value)


def _bits_table(data: dict, source: str) -> dict[str, int]:
    """The optional [bits] table: layer = k-means bits, a whole number from 1 to BITS_MAX."""
    table = data.get("bits", {})
    if not isinstance(table, Mapping):
        raise UserError(f"{source}: 'bits' must be a table of layer = bits")
    bits = _flatten(table)
    for layer, value in bits.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= BITS_MAX:
            raise UserError(
                f"{source}: bits of {layer} must be a whole number from 1 to {BITS_MAX}, got {value!r}"
            )
    return bits


def _optional_string(data: dict, key: str, source: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f"{source}: '{key}' must be a string")
    return value


def parse_profile(text: str, source: str = "profile", default_name: str = "profile") -> Profile:
    """Parse and validate a profile's TOML text (layer names are checked later, against a model)."""
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))  # a byte-order mark from a Windows editor
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{source}: not valid TOML ({e})") from None
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise UserError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(a profile has {', '.join(TOP_LEVEL_KEYS[:-1])})"
        )
    table = data.get("sparsity")
    if table is None:
        raise UserError(f"{source}: no [sparsity] table (layer = sparsity lines)")
    if not isinstance(table, Mapping):
        raise UserError(f"{source}: 'sparsity' must be a table of layer = sparsity")
    sparsity = {layer: _check_value(layer, v, source) for layer, v in _flatten(table).items()}
    name = _optional_string(data, "name", source) or default_name
    method = _optional_string(data, "method", source) or DEFAULT_METHOD
    if method not in METHODS:
        raise UserError(f"{source}: unknown method '{method}'; known: {', '.join(METHODS)}")
    return Profile(
        name=name,
        sparsity=sparsity,
        model=_optional_string(data, "model", source),
        description=_optional_string(data, "description", source),
        method=method,
        bits=_bits_table(data, source),
    )


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    if not path.exists():
        raise UserError(f"profile not found: {path}")
    if not path.is_file():
        raise UserError(f"profile is not a file: {path}")
    if path.stat().st_size > MAX_PROFILE_BYTES:
        raise UserError(f"{path}: too large to be a profile ({path.stat().st_size} bytes)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read profile {path}: {e}") from None
    return parse_profile(text, source=str(path), default_name=path.stem)


def check_layer_names(layers: Iterable[str], layer_names: Iterable[str], context: str = "") -> None:
    """Every name in `layers` must be a prunable tensor of the model; the error lists the closest real ones."""
    names = list(layer_names)
    for layer in layers:
        if layer not in names:
            close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5) or names[:3]
            raise UserError(f"{context}unknown layer {layer}; closest: {', '.join(close)}")


def resolve_layer_names(given: Iterable[str], layer_names: Iterable[str], context: str = "") -> list[str]:
    """Layer names typed on the command line (`--layers`, `--lock`) as the model's full names, each once,
    in the order given. A name is a full name (`backbone.conv0.weight`), or the end, at a dot, of exactly
    one (`conv0.weight`), where a module's name stands for its `.weight` (`conv0`, `backbone.conv0`); an
    exact full name always wins. A name that matches none, or several (`weight`), is a UserError that
    lists the candidates. Profiles keep exact names (check_layer_names)."""
    names = list(layer_names)
    resolved = []
    for text in given:
        matches = [text] if text in names else [n for n in names if text in _tails(n)]
        if not matches:
            raise UserError(f"{context}unknown layer {text}; closest: {', '.join(_closest(text, names))}")
        if len(matches) > 1:
            more = f" and {len(matches) - 3} more" if len(matches) > 3 else ""
            raise UserError(
                f"{context}{text} matches {len(matches)} layers: {', '.join(matches[:3])}{more}; "
                "give more of the name"
            )
        resolved.append(matches[0])
    return list(dict.fromkeys(resolved))


def split_layer_names(text: str, layer_names: Iterable[str]) -> list[str]:
    """The names listed in `--layers`/`--lock` text, split at commas, except a comma inside a real name:
    at each place the longest full name or end of one (resolve_layer_names' forms) that contains a comma
    and runs up to a comma or the end of the text is taken whole (`convs.3,3.weight,conv0` for a layer
    `convs.3,3.weight`: two names). Blanks around the names are dropped. Raises nothing; unknown names
    are resolve_layer_names' to refuse."""
    with_comma = sorted({t for n in layer_names for t in (n, *_tails(n)) if "," in t}, key=len, reverse=True)
    items, rest = [], text
    while rest:
        rest = rest.lstrip()
        whole = next((t for t in with_comma if _ends_an_item(rest, t)), None)
        item = rest.partition(",")[0] if whole is None else whole + rest[len(whole) :].partition(",")[0]
        items.append(item.strip())
        rest = rest[len(item) + 1 :]
    return [item for item in items if item]


def _ends_an_item(text: str, name: str) -> bool:
    """`text` starts with `name`, then blanks up to a comma or the end."""
    return text.startswith(name) and text[len(name) :].lstrip()[:1] in ("", ",")


def _tails(name: str) -> set[str]:
    """What a typed name may be for `name`: its ends at a dot, and those of its module (without `.weight`)."""
    parts = name.split(".")
    module = parts[:-1] if len(parts) > 1 and parts[-1] == "weight" else parts
    return {".".join(p[i:]) for p in (parts, module) for i in range(len(p))}


def _closest(text: str, names: list[str]) -> list[str]:
    """The three names whose ends are most like `text` (model order among equals), else the first three."""
    score = {n: max(difflib.SequenceMatcher(None, text, tail).ratio() for tail in _tails(n)) for n in names}
    return [n for n in sorted(names, key=lambda n: -score[n]) if score[n] >= 0.5][:3] or names[:3]


def check_layers(profile: Profile, layer_names: Iterable[str]) -> None:
    """Every layer the profile names must be a prunable tensor of the model."""
    check_layer_names([*profile.sparsity, *profile.bits], layer_names, context=f"profile '{profile.name}': ")


def profile_toml(profile: Profile) -> str:
    data: dict[str, object] = {"name": profile.name, "method": profile.method}
    if profile.model:
        data["model"] = profile.model
    if profile.description:
        data["description"] = profile.description
    data["sparsity"] = {layer: round(float(s), 6) for layer, s in profile.sparsity.items()}
    if profile.bits:
        data["bits"] = dict(profile.bits)
    return tomli_w.dumps(data)


def save_profile(profile: Profile, path: str | Path, overwrite: bool = False) -> Path:
    """Write atomically; refuse to replace an existing file unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists (choose another name or allow overwriting)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, lambda f: f.write(profile_toml(profile)))
    except OSError as e:
        raise UserError(f"cannot save profile {path}: {e.strerror or e}") from None
