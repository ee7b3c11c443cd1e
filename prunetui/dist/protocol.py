"""What a job's processes tell the parent: one JSON object a line on the job's stdout.

`type` says what a line is: a core event (progress, scan_point, epoch_end, with the event's own fields),
`started` (a rank and its pid), `result` (the job's outcome) or `error` (a rank's failure).
"""

import json
from dataclasses import asdict

from prunetui.core.events import EpochEnd, Event, Progress, ScanPoint

EVENTS = {"progress": Progress, "scan_point": ScanPoint, "epoch_end": EpochEnd}
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
