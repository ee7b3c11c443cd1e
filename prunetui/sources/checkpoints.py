"""The one checkpoint reader: find the weights in a file, clean them, load them strictly into a model.

Accepted, in any combination:
- a bare state_dict, or one nested under a usual key (`state_dict`, `model`, `model_state_dict`, `net`,
  `network`, `weights`, `params`, an EMA copy: `state_dict_ema`, `model_ema`, `ema`, ...) beside optimizer
  state, epoch, metrics and an argparse.Namespace of arguments (torchvision's reference, timm, Lightning-
  style hand-written dicts; one level deeper too, named `outer/inner`);
- key prefixes left by wrappers: `module.` (DataParallel, DDP, EMA wrappers) and `_orig_mod.`
  (torch.compile), in any order, matched against the model's own names; torchvision's AveragedModel
  `n_averaged` counter is dropped;
- files written by torch.nn.utils.prune before `prune.remove`: `X_orig` and `X_mask` become `X = orig *
  mask`, and the mask (bool, True = kept) is returned in `LoadedCheckpoint.masks`;
- `.safetensors` files;
- prunetui's channel checkpoints (every stage of kept indices + the smaller state_dict, core.lineage): the
  kept channels are replayed on the freshly built model, which becomes the smaller one;
- a checkpoint for another class count whose only misfit is the classifier (sources/heads.py): every
  other weight loaded, the model's classifier kept as initialised, and a note says so.

When a file holds several weight sets, the default is the first in `WEIGHT_KEYS` order: an EMA copy first
(the weights timm's and torchvision's reference scripts evaluate with), then `state_dict`, `model_state_dict`,
`model`, ...; `LoadedCheckpoint.note` says which was used, and `key=` (`--checkpoint-key`) chooses another.
State-dict metadata (`state_dict._metadata`: each module's `version`, read by some modules' loading rules,
e.g. torchvision's MNASNet and BatchNorm's) is kept from the file, wrapper prefixes stripped like the
keys; a file without it (a plain dict, .safetensors) is read as written by this version of the model's
code: the model's own metadata is used (MNASNet refuses a state_dict without any), and a missing
BatchNorm `num_batches_tracked` is the model's own counter, as BatchNorm's rule for old files gives.
Refused with one UserError line naming the file: no weights found, an unknown key, NaN or inf in a tensor
(named), a pickle that would run code, a damaged file, a state_dict that does not fit the model (keys named).
"""

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunetui.core.lineage import ChannelStage, is_channel_checkpoint, rebuild, stages_of
from prunetui.errors import UserError
from prunetui.sources.checkpoint_files import read_torch_file, read_weights_file, short_reason
from prunetui.sources.heads import NewHead, new_head

__all__ = ["WEIGHT_KEYS", "LoadedCheckpoint", "load_checkpoint", "read_checkpoint", "read_torch_file"]

_SHOWN = 3  # keys named per kind of mismatch
WEIGHT_KEYS = (
    "state_dict_ema",
    "model_ema",
    "ema_state_dict",
    "ema_model",
    "ema",
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "weights",
    "params",
)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What a checkpoint held: the weights, the torch.nn.utils.prune masks, where they were, a note."""

    state_dict: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)  # bool, True = kept; model names
    chosen_key: str | None = None  # None for a bare state_dict; "outer/inner" for a nested one
    note: str = ""  # one line for the user ("" when there is nothing to say)
    stages: tuple[ChannelStage, ...] = ()  # a channel checkpoint's (core.lineage): rebuilt smaller
    record: dict = field(default_factory=dict)  # what prunetui recorded in an export (its `prunetui` entry)
    new_head: NewHead | None = None  # a checkpoint for another class count: the classifier kept as built


def load_checkpoint(model: nn.Module, path: str, key: str | None = None) -> LoadedCheckpoint:
    """Strictly load the weights in `path` (under `key` if given) into `model`, cast to its float dtypes.

    Returns the LoadedCheckpoint with names as in the model. The model is unchanged when this raises.
    """
    content = read_weights_file(path)
    if is_channel_checkpoint(content):
        return _rebuild_channels(model, content, path)
    loaded = read_checkpoint(path, key, content)
    expected = model.state_dict()
    names = _name_map(loaded.state_dict, expected)
    state = {names[k]: v for k, v in loaded.state_dict.items() if k in names}
    masks = {names.get(k, k): v for k, v in loaded.masks.items()}
    problems = _mismatches(state, expected)
    head = new_head(model, state, expected) if problems else None
    if problems and head is None:
        raise UserError(f"checkpoint does not fit the model: {problems}")
    note = loaded.note
    if head is not None:  # another class count: the model keeps its own classifier (sources/heads.py)
        state = {name: value for name, value in state.items() if name not in head.keys}
        masks = {name: mask for name, mask in masks.items() if name not in head.keys}
        note = _join(note, head.note(path))
    cast = {name: _cast_like(value, expected[name]) for name, value in state.items()}
    cast |= {name: expected[name] for name in head.keys} if head is not None else {}  # its own head
    # BatchNorm's rule for old files (a missing counter is the module's own), whatever versions are used
    cast |= {k: v for k, v in expected.items() if k.endswith("num_batches_tracked") and k not in cast}
    cast = _with_metadata(cast, _metadata_for(loaded.state_dict, expected, names))
    try:
        model.load_state_dict(cast, strict=True)
    except RuntimeError as error:  # a custom module's own loading rules
        raise UserError(f"checkpoint does not fit the model: {short_reason(error)}") from error
    record = content.get("prunetui", {}) if isinstance(content, Mapping) else {}
    return LoadedCheckpoint(state, masks, loaded.chosen_key, note, record=dict(record), new_head=head)


def _rebuild_channels(model: nn.Module, saved: dict, path: str) -> LoadedCheckpoint:
    """`model` (freshly built, unpruned) becomes the channel-pruned model `saved` describes."""
    _check_finite(saved["state_dict"], path)
    if getattr(saved["state_dict"], "_metadata", None) is None:  # written before prunetui kept it
        own = getattr(model.state_dict(), "_metadata", None)
        saved = saved | {"state_dict": _with_metadata(saved["state_dict"], own)}
    rebuild(model, saved)
    stages = stages_of(saved)
    groups = sum(1 for stage in stages for index in stage.kept.values() if index)
    rounds = f", {len(stages)} rounds" if len(stages) > 1 else ""
    algorithms = ", ".join(dict.fromkeys(stage.algorithm for stage in stages))
    note = (
        f"channel checkpoint {path}: the smaller model rebuilt from its kept channels "
        f"({groups} groups{rounds}, {algorithms})"
    )
    record = dict(saved.get("prunetui", {}))
    return LoadedCheckpoint(dict(saved["state_dict"]), {}, None, note, stages, record)


def read_checkpoint(path: str, key: str | None = None, content: Any = None) -> LoadedCheckpoint:
    """The weight set in `path` (the default one, or the one under `key`), pruning masks folded in,
    every floating tensor checked finite. Names are as in the file. `content`: the file already read."""
    candidates = _candidates(read_weights_file(path) if content is None else content)
    if not candidates:
        raise UserError(_no_weights_message(path))
    chosen, state, note = _choose(candidates, key, path)
    metadata = getattr(state, "_metadata", None)
    state, masks = _fold_pruning_masks(state)
    state = _with_metadata(state, metadata)
    _check_finite(state, path)
    if masks:
        note = _join(
            note,
            f"checkpoint {path}: {len(masks)} tensors were saved by torch.nn.utils.prune before prune.remove "
            "(weight = weight_orig * weight_mask)",
        )
    return LoadedCheckpoint(state, masks, chosen or None, note)


def _is_weight_set(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
        and any(v.is_floating_point() for v in value.values())
    )


def _candidates(content: Any) -> dict[str, dict[str, torch.Tensor]]:
    """Every weight set in the file content, preferred first: {"" : bare state_dict} or {key path: set}."""
    if _is_weight_set(content):
        return {"": _copy(content)}
    if not isinstance(content, Mapping):
        return {}
    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in content.items():
        if _is_weight_set(value):
            found[str(key)] = _copy(value)
        elif isinstance(value, Mapping):
            found.update({f"{key}/{inner}": _copy(v) for inner, v in value.items() if _is_weight_set(v)})
    return dict(sorted(found.items(), key=lambda item: _preference(item[0])))


def _copy(state: Mapping) -> dict[str, torch.Tensor]:
    """A copy of a weight set, its state-dict metadata kept."""
    return _with_metadata(dict(state), getattr(state, "_metadata", None))


def _with_metadata(state: dict, metadata: Mapping | None) -> dict:
    """`state` as an OrderedDict carrying `metadata` as its `_metadata` (unchanged when None)."""
    if metadata is None:
        return state
    result = OrderedDict(state)
    result._metadata = OrderedDict((k, dict(v)) for k, v in metadata.items())  # type: ignore[attr-defined]
    return result


def _metadata_for(state: Mapping, expected: Mapping, names: Mapping[str, str]) -> Mapping | None:
    """The metadata to load `state` with: the file's (prefixes renamed as `names` renamed its keys), the
    model's own for modules the file does not list; the model's own when the file has none."""
    own = getattr(expected, "_metadata", None)
    found = getattr(state, "_metadata", None)
    if found is None:
        return own
    renamed = any(k != v for k, v in names.items())
    if renamed:  # wrapper prefixes: keep the wrapped modules' entries, under the model's names
        found = {_plain_name(f"{k}.")[:-1]: v for k, v in found.items() if _plain_name(f"{k}.") != f"{k}."}
    return {**(own or {}), **found}


def _preference(path: str) -> int:
    ranks = [WEIGHT_KEYS.index(part) for part in path.split("/") if part in WEIGHT_KEYS]
    return min(ranks, default=len(WEIGHT_KEYS))


def _choose(
    candidates: dict[str, dict[str, torch.Tensor]], key: str | None, path: str
) -> tuple[str, dict[str, torch.Tensor], str]:
    names = [name for name in candidates if name]
    if key is None:
        chosen = next(iter(candidates))
        others = [name for name in names if name != chosen]
        note = (
            f"checkpoint {path}: using the weights under '{chosen}' (also there: {', '.join(others)}; "
            "choose with --checkpoint-key)"
            if others
            else ""
        )
        return chosen, candidates[chosen], note
    if key in candidates and key:
        return key, candidates[key], ""
    if not names:
        raise UserError(
            f"checkpoint {path} holds a bare state_dict with no keys to choose: leave out --checkpoint-key"
        )
    raise UserError(
        f"checkpoint {path} has no weights under '{key}': use --checkpoint-key {' or '.join(names)}"
    )


def _no_weights_message(path: str) -> str:
    return (
        f"checkpoint {path} holds no weights: expected a state_dict, or a dict holding one under a key "
        f"such as {', '.join(WEIGHT_KEYS[5:9])} (save model.state_dict())"
    )


def _fold_pruning_masks(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """torch.nn.utils.prune's `X_orig` + `X_mask` -> `X = orig * mask`; the masks returned as bool."""
    weights: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        base = key.removesuffix("_orig")
        mask = state.get(f"{base}_mask") if key.endswith("_orig") else None
        if mask is not None and mask.shape == value.shape:
            weights[base], masks[base] = value * mask, mask.bool()
        elif not (key.endswith("_mask") and f"{key.removesuffix('_mask')}_orig" in state):
            weights[key] = value
    return weights, masks


def _check_finite(state: dict[str, torch.Tensor], path: str) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise UserError(
            f"checkpoint {path} has NaN or inf values in {_first(bad)}: the training diverged before it "
            "was saved; use an earlier checkpoint (or another --checkpoint-key)"
        )


def _plain_name(key: str) -> str:
    """A name without wrapper prefixes: leading `module.`/`_orig_mod.` in any order, `._orig_mod.` inside."""
    key = key.replace("._orig_mod.", ".")
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def _name_map(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """File name -> model name, matched through the plain names; file names kept where that is ambiguous."""
    keys = [k for k in state if not _is_averaging_counter(k, state, expected)]
    if all(k in expected for k in keys):
        return {k: k for k in keys}
    model_names = {_plain_name(k): k for k in expected}
    mapped = {k: model_names.get(_plain_name(k), _plain_name(k)) for k in keys}
    if len(model_names) != len(expected) or len(set(mapped.values())) != len(mapped):
        return {k: k for k in keys}  # two names collapse into one: the mismatch check names the keys
    return mapped


def _is_averaging_counter(key: str, state: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    # torch.optim.swa_utils.AveragedModel (torchvision's EMA) adds `n_averaged` beside `module.*`.
    return (
        key == "n_averaged"
        and key not in expected
        and all(k.startswith("module.") for k in state if k != key)
    )


def _mismatches(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str:
    # BatchNorm fills a missing num_batches_tracked itself; it does not affect the weights.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} in checkpoint vs {tuple(expected[k].shape)} in model"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    parts = [("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)]
    return "; ".join(f"{label} {_first(items)}" for label, items in parts if items)


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    rest = len(items) - _SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def _cast_like(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if value.is_floating_point() and target.is_floating_point():
        return value.to(dtype=target.dtype)
    return value
