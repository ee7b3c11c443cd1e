"""How long a key takes to show while a scan runs: the issue-17 goal is a median under 100 ms.

    python benchmarks/key_echo.py [--model vgg-cifar --data random:512:3x32x32] [--presses 40]

The real app, driven by Textual's Pilot in this process (the scan's thread competes with the UI
thread for the interpreter, as in the terminal): it starts a scan (`s`), then presses `+` on the
selected layer every 150 ms and times each press until the screen's state shows the new target.
The same presses with no job running give the baseline.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from prunetui.tui.app import PruneApp
from prunetui.workflow.opening import Request, open_session


async def press_times(app: PruneApp, pilot, presses: int) -> list[float]:
    """Milliseconds from each `+` until `app.workbench.targets` holds the nudged value."""
    times = []
    for _ in range(presses):
        layer = app.workbench.selected_layer
        before = app.workbench.targets[layer]
        started = time.perf_counter()
        # not awaited: Pilot.press also waits for the screen to settle, which a running job's
        # progress messages delay by up to its 2 s timeout; the state change is what a user sees
        pressing = asyncio.create_task(pilot.press("plus" if before < 0.9 else "minus"))
        while app.workbench.targets[layer] == before:
            if time.perf_counter() - started > 10:
                raise RuntimeError(f"'+' did not change {layer}'s target within 10 s (keys disabled?)")
            await asyncio.sleep(0.001)
        times.append((time.perf_counter() - started) * 1000)
        await pressing
        await asyncio.sleep(0.15)
    return times


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        opened = open_session(Request(model=args.model, data=args.data, device="cpu"), workdir=Path(folder))
        app = PruneApp(opened.session, workdir=Path(folder))
        app.animation_level = "none"
        async with app.run_test(size=(120, 40)) as pilot:
            while app.workbench.busy:  # the dense evaluation at start
                await asyncio.sleep(0.05)
            idle = await press_times(app, pilot, args.presses // 2)
            await pilot.press("s")
            await asyncio.sleep(0.5)
            scanning = await press_times(app, pilot, args.presses) if app.workbench.busy else []
            still = app.workbench.busy
            app.workbench.jobs.cancel()
    report("idle", idle)
    report("during a scan", scanning)
    if not still:
        print("note: the scan ended before the last press; use a larger model or more data")


def report(what: str, times: list[float]) -> None:
    if not times:
        print(f"{what}: no presses (the scan ended first)")
        return
    ordered = sorted(times)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    print(
        f"{what}: median {statistics.median(times):.1f} ms, p90 {p90:.1f} ms, max {max(times):.1f} ms ({len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="vgg-cifar")
    parser.add_argument("--data", default="random:512:3x32x32")
    parser.add_argument("--presses", type=int, default=40)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
