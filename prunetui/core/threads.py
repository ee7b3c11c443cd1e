"""One thread policy for torch, the same whichever front end runs the work.

torch's default intra-op pool is the number of cores. On a machine that other processes also load, two
spinning OpenMP threads on two cores can make an epoch many times slower than one thread (measured here:
0.9-4.3 s against 0.17 s per demo epoch), so the count is the user's to set: `--threads N` or
PRUNETUI_THREADS, applied when a session opens (the command line and the workbench both open through
workflow.opening), and recorded in every run.
"""

import os

import torch

from prunetui.errors import UserError

ENV = "PRUNETUI_THREADS"


def thread_count(given: int | None) -> int | None:
    """`given`, else $PRUNETUI_THREADS, else None (torch's default). UserError for anything but a whole
    number from 1 up."""
    text = str(given) if given is not None else os.environ.get(ENV)
    if text is None or text == "":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        source = "--threads" if given is not None else ENV
        raise UserError(f"{source} must be a whole number of threads from 1 up, got {text!r}")
    return count


def apply_thread_policy(given: int | None) -> int:
    """Set torch's intra-op threads as the policy says; the count in use."""
    count = thread_count(given)
    if count is not None:
        torch.set_num_threads(count)
    return torch.get_num_threads()
