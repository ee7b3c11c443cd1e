"""What passes between a job's parent and its processes: the job's settings, and one JSON object a
line on the job's stdout back.

`type` says what a line is: a core event (progress, scan_point, epoch_end, with the event's own fields),
`started` (a rank and its pid), `result` (the job's outcome) or `error` (a rank's failure).
"""

import json
from collections.abc import Iterable
from dataclasses import asdict

import torch
from torch.utils.data import SequentialSampler

from prunetui.core.events import EpochEnd, Event, Notice, Progress, ScanPoint
from prunetui.core.finetune import FinetuneResult, best_of

EVENTS = {"progress": Progress, "scan_point": ScanPoint, "epoch_end": EpochEnd, "notice": Notice}
_TYPES = {kind: name for name, kind in EVENTS.items()}


def event_message(event: Event) -> dict:
    return {"type": _TYPES[type(event)], **asdict(event)}


def to_event(message: dict) -> Event | None:
    """The core event a message carries, or None for the other messages."""
    kind = EVENTS.get(message["type"])
    return None if kind is None else kind(**{k: v for k, v in message.items() if k != "type"})


def encode(message: dict) -> bytes:
    return (json.dumps(message) + "\n").encode()


def decode(line: bytes | str) -> dict | None:
    """The message on `line`, or None when the line is not one (something else wrote to stdout)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) and isinstance(message.get("type"), str) else None


def loader_settings(train: Iterable, evals: Iterable) -> dict:
    """The session's own global batch size and shuffling, and a shuffling seed every rank shares, drawn
    from torch's generator as a shuffling DataLoader draws one."""
    return {
        "batch_size": getattr(train, "batch_size", None) or 128,
        "shuffle": not isinstance(getattr(train, "sampler", None), SequentialSampler),
        "seed": int(torch.randint(2**31 - 1, ())),
        **eval_settings(evals),
    }


def eval_settings(evals: Iterable) -> dict:
    return {
        "eval_batch_size": getattr(evals, "batch_size", None) or 512,
        "num_workers": getattr(evals, "num_workers", 0),
    }


def finetune_result(state: dict | None, cancelled: bool) -> FinetuneResult:
    """The result the last epoch's state describes (empty when no epoch completed)."""
    result = FinetuneResult(cancelled=cancelled)
    if state is not None:
        result.epochs = [EpochEnd(**e) for e in state["epochs"]]
        result.best_epoch = state["best_epoch"]
        result.best_accuracy = best_of(result)
        result.masks = state.get("held_masks")
    return result


def kept_note(result: FinetuneResult) -> str:
    if not result.epochs:
        return "; no epoch completed, the weights are unchanged"
    return f"; kept the best of {result.completed} completed epochs (epoch {result.best_epoch})"
