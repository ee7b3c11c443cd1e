"""How often a scan says how far it is: the progress events of a lab VGG scan, raw and as the TUI
posts them (tui.jobs.JobContext, throttled to ~10/s), and how close the time left was.

    python benchmarks/progress_rate.py [--images 512] [--device cpu] [--plain]

It opens the session `prunetui scan --model vgg-cifar --data random:512:3x32x32` opens and runs the
same workflow step with `--no-cache`, timestamping every Progress. It prints the longest gap between
two events (the goal: under 1 s, so a front end redraws at least once a second), the event rate, the
same two through the TUI's throttle, and the time left core.eta gave at 25%, 50% and 75% of the scan
against the time it then took.
"""

import argparse
import threading
import time

from prunetui.core.eta import Eta
from prunetui.core.events import Event, Progress
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions
from prunetui.workflow import steps
from prunetui.workflow.opening import Request, open_session


def gaps(times: list[float]) -> tuple[float, float]:
    """(longest gap between two events, events a second)."""
    longest = max((b - a for a, b in zip(times, times[1:], strict=False)), default=float("nan"))
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return longest, (len(times) - 1) / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plain", action="store_true", help="the lab's loop instead of the fast scan")
    args = parser.parse_args()
    request = Request(model="vgg-cifar", data=f"random:{args.images}:3x32x32", device=args.device)
    session = open_session(request).session
    raw: list[tuple[float, Progress]] = []
    posted: list[float] = []
    eta, estimates = Eta(), {}

    from prunetui.tui.jobs import JobContext  # the TUI's own throttle

    context = JobContext(lambda message: posted.append(time.monotonic()), threading.Event())

    def report(event: Event) -> None:
        if not isinstance(event, Progress):
            return
        now = time.monotonic()
        raw.append((now, event))
        context.report(event)
        eta.update(event, now)
        for quarter in (0.25, 0.5, 0.75):
            if quarter not in estimates and event.total and event.done >= quarter * event.total:
                estimates[quarter] = (now, eta.seconds_left(now))

    started = time.monotonic()
    options = ScanOptions(fast=not args.plain)
    result = steps.scan(
        session, steps.say_nothing, report, None, DEFAULT_SPARSITIES, None, options, use_cache=False
    )
    ended = time.monotonic()
    scan_events = [(t, e) for t, e in raw if e.stage == "scan"]
    longest, rate = gaps([t for t, _ in scan_events])
    posted_longest, posted_rate = gaps(posted)
    first = scan_events[0][0] - started
    print(
        f"lab VGG, {args.images} images, {result.path} path, {result.seconds:.1f} s scan, "
        f"{len(scan_events)} scan progress events (total {scan_events[-1][1].total} units: batches weighted by work)"
    )
    print(f"raw:    longest gap {longest:.3f} s, {rate:.1f} events/s, first after {first:.2f} s")
    print(f"posted: longest gap {posted_longest:.3f} s, {posted_rate:.1f} messages/s (TUI throttle)")
    for quarter, (at, left) in sorted(estimates.items()):
        shown = "n/a" if left is None else f"{left:.1f} s"
        print(f"time left at {quarter:.0%}: said {shown}, took {ended - at:.1f} s")


if __name__ == "__main__":
    main()
