"""Time to the workbench's first frame against `python -c "import torch"`, side by side, in a real pty.

    python benchmarks/startup.py [--rounds 3] [--marker Layers] [-- extra prunetui args]

The app runs in a pseudo-terminal of 80x24 (as over SSH); the first frame is the moment its output
first holds `--marker` (a word drawn with the first frame: "Quit", from the footer's keys, by
default). Then `q` quits it. Rounds run import, app, app, import, ... and the script prints
the medians and the ratio; the goal (issue 17) is under 0.6x the import.
"""

import argparse
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from fcntl import ioctl
from pathlib import Path

PYTHON = sys.executable


def import_torch_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", "import torch"], check=True)
    return time.perf_counter() - started


def first_frame_seconds(marker: bytes, extra: list[str], timeout: float = 120.0) -> float:
    """Start the app in a pty of 80x24, wait for `marker` in its output, quit it; seconds to the marker."""
    main, child = pty.openpty()
    ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8", "TEXTUAL_ANIMATIONS": "none"}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        process = subprocess.Popen(
            [PYTHON, "-m", "prunetui", *extra], stdin=child, stdout=child, stderr=child, cwd=folder, env=env
        )
        os.close(child)
        seen, elapsed = b"", None
        try:
            while time.perf_counter() - started < timeout:
                ready, _, _ = select.select([main], [], [], 0.05)
                if ready:
                    try:
                        seen += os.read(main, 65536)
                    except OSError:
                        break
                    if elapsed is None and marker in seen:
                        elapsed = time.perf_counter() - started
                        os.write(main, b"q")
                if process.poll() is not None:
                    break
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            os.close(main)
    if elapsed is None:
        raise RuntimeError(f"no '{marker.decode()}' in the app's output within {timeout:.0f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--marker", default="Quit")
    parser.add_argument("extra", nargs="*", help="prunetui arguments, after --")
    args = parser.parse_args()
    imports, frames = [], []
    for _ in range(args.rounds):  # ABBA: a drift in the machine's load falls on both
        imports.append(import_torch_seconds())
        frames.append(first_frame_seconds(args.marker.encode(), args.extra))
        frames.append(first_frame_seconds(args.marker.encode(), args.extra))
        imports.append(import_torch_seconds())
    imported, framed = statistics.median(imports), statistics.median(frames)
    print(f"python -c 'import torch': median {imported:.2f} s  ({', '.join(f'{s:.2f}' for s in imports)})")
    print(f"prunetui first frame:      median {framed:.2f} s  ({', '.join(f'{s:.2f}' for s in frames)})")
    print(f"ratio first frame / import torch: {framed / imported:.2f} (goal < 0.6)")
    print(f"cores {os.cpu_count()}, {Path(PYTHON).name}")


if __name__ == "__main__":
    main()
