"""Key echo in a real terminal: from a key's write to the first output that draws its effect (issue 17).

    python benchmarks/key_echo_pty.py [--sizes 120x40,80x24] [--presses 30] [--interval 0.15]
                                      [--model vgg-cifar --data random:512:3x32x32] [--epochs 5]
                                      [--verbose] [--screens FILE]       # about 2 min on 2 CPU cores

`benchmarks/key_echo.py` times the app's state change through Pilot; this times what a user sees. The
real CLI (`python -m prunetui --model ... --data ... --device cpu`, the TUI entry) runs in a
pseudo-terminal of each size (its controlling terminal, TERM=xterm-256color, TEXTUAL_ANIMATIONS=none),
in a fresh working directory (so no scan is cached). A reader thread timestamps every chunk the app
writes; the main thread feeds the chunks, in order, to pyte (a VT100 emulator: Textual writes partial
updates with cursor moves and colours, so the screen is rebuilt rather than the bytes searched) and a
key's echo is the timestamp of the first chunk after which the screen shows the key's effect:
- `+`/`-`: the Target cell of the selected layer's row (under the table's "Target" header) reads the
  new value (+ up to 0.50, then - down to 0.00, and so on);
- `j`/`k`: the cursor's background colour is on the next (previous) layer's row.
Each press waits for its echo (or `--timeout`), then `--interval` seconds. Phases, in one app per size:
idle (after the dense evaluation of the start); during a scan (`s`; target edits are allowed beside
it); during a finetune (`5` on the selected layer, `f`, the epochs and `enter` in its dialog, timed from
its first training batch; `j`/`k` only: target edits wait while a job changes the model). Each job is
cancelled (`x`) once its presses are done. Prints median, p90, max (ms) per size, phase and key
(`--verbose`: every press; `--screens FILE`: the screen's text at each phase); the goal is a median
under 100 ms. The app's process group is killed on any exit of this script; if this script is killed
outright, the closed pty hangs the app up.

Needs pyte (`pip install pyte`), for this benchmark only.
"""

import argparse
import os
import pty
import queue
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from fcntl import ioctl
from pathlib import Path

try:
    import pyte
except ModuleNotFoundError:  # a benchmark-only dependency, not in pyproject.toml
    raise SystemExit("key_echo_pty.py needs pyte: pip install pyte") from None

PYTHON = sys.executable
LAYER_ROW = re.compile(r"^\W*(\S+)\s+\d+(?:×\d+)+\s")  # a layer table row: name, shape (64×3×3×3)
DENSE_MEASURED = re.compile(r"dense \d+\.\d+%")  # the header, once the start's evaluation is done


class AppInPty:
    """The app in a pseudo-terminal; `screen` is what a terminal would show after the chunks fed so far."""

    def __init__(self, argv: list[str], cols: int, rows: int, workdir: Path):
        self.main, child = pty.openpty()
        ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8", "TEXTUAL_ANIMATIONS": "none"}
        env.pop("TEXTUAL_FPS", None)
        self.process = subprocess.Popen(
            argv,
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=workdir,
            env=env,
            start_new_session=True,  # its own process group, killed whole in close()
            preexec_fn=_take_controlling_terminal,  # hung up if this script dies without close()
        )
        os.close(child)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
        self.raw_bytes = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.main, 65536)
            except OSError:  # EIO: the app is gone
                data = b""
            self.chunks.put((time.perf_counter(), data))
            if not data:
                return

    def write(self, key: str) -> float:
        """Send `key`; the time just before the write."""
        self.drain()
        started = time.perf_counter()
        os.write(self.main, key.encode())
        return started

    def drain(self) -> None:
        """Feed what has arrived so far."""
        while True:
            try:
                _, data = self.chunks.get_nowait()
            except queue.Empty:
                return
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        if not data:
            raise RuntimeError(f"the app exited (code {self.process.poll()}):\n{self.text()}")
        self.raw_bytes += len(data)
        self.stream.feed(data)

    def wait_for(self, shown: Callable[[pyte.Screen], bool], timeout: float) -> float | None:
        """Feed chunks until `shown(screen)`; the arrival time of the chunk that made it so, or None."""
        deadline = time.perf_counter() + timeout
        if shown(self.screen):
            return time.perf_counter()
        while (left := deadline - time.perf_counter()) > 0:
            try:
                arrived, data = self.chunks.get(timeout=left)
            except queue.Empty:
                return None
            self._feed(data)
            if shown(self.screen):
                return arrived
        return None

    def settle(self, seconds: float) -> None:
        """Keep feeding for `seconds` (lets a screen finish drawing)."""
        self.wait_for(lambda _: False, seconds)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def close(self) -> None:
        if self.process.poll() is None:
            for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.process.wait()
        os.close(self.main)
        self.reader.join(2)


def _take_controlling_terminal() -> None:
    ioctl(0, termios.TIOCSCTTY, 0)


# --- reading the screen ---------------------------------------------------------------------------
def layer_rows(screen: pyte.Screen) -> dict[str, int]:
    """Layer name -> screen row, for the layer table's rows in view."""
    rows = {}
    for y, line in enumerate(screen.display):
        if match := LAYER_ROW.match(line):
            rows.setdefault(match.group(1), y)
    return rows


def target_of(screen: pyte.Screen, layer: str) -> str | None:
    """The text under the "Target" header in `layer`'s row."""
    lines = screen.display
    header = next((line for line in lines if " Layer " in line and "Target" in line), None)
    row = layer_rows(screen).get(layer)
    if header is None or row is None:
        return None
    start = header.index("Target")
    return lines[row][start : start + len("Target")].strip()


def name_background(screen: pyte.Screen, row: int) -> str:
    """The background colour of the first letter of the layer name in `row`."""
    line = screen.display[row]
    x = len(line) - len(line.lstrip("█▌▐▎▍▏ "))
    return screen.buffer[row][x].bg


def cursor_layer(screen: pyte.Screen, normal: str) -> str | None:
    """The layer whose row does not have the rows' usual background: the cursor's."""
    marked = [name for name, y in layer_rows(screen).items() if name_background(screen, y) != normal]
    return marked[0] if len(marked) == 1 else None


def marked(screen: pyte.Screen, layer: str, normal: str) -> bool:
    """`layer`'s row has the cursor's colour (drawn before or after the old row is cleared)."""
    row = layer_rows(screen).get(layer)
    return row is not None and name_background(screen, row) != normal


def job_running(screen: pyte.Screen) -> bool:
    """The job's progress bar is drawn on the line above the footer while a job runs."""
    line = screen.display[-2]
    return bool(re.search(r"[━╸╺]", line)) and "%" in line


def training(screen: pyte.Screen) -> bool:
    return job_running(screen) and "train" in screen.display[-2]


def ready(screen: pyte.Screen) -> bool:
    return (
        bool(DENSE_MEASURED.search(screen.display[0]))
        and len(layer_rows(screen)) >= 2
        and not job_running(screen)
    )


# --- the presses ----------------------------------------------------------------------------------
class Presses:
    def __init__(self, app: AppInPty, interval: float, timeout: float):
        self.app, self.interval, self.timeout = app, interval, timeout
        self.app.drain()
        rows = layer_rows(app.screen)
        names = list(rows)
        self.first, self.second = names[0], names[1]
        # at start the cursor is on the first layer: the second row shows the usual background
        self.normal = name_background(app.screen, rows[self.second])
        if name_background(app.screen, rows[self.first]) == self.normal:
            raise RuntimeError("cannot tell the layer table's cursor by its colour:\n" + app.text())

    def nudges(self, count: int) -> tuple[list[float], int]:
        """`+`/`-` on the layer under the cursor: ms until its Target cell reads the new value."""

        def press():
            layer = cursor_layer(self.app.screen, self.normal) or self.first
            now = target_of(self.app.screen, layer)
            if now is None:
                raise RuntimeError(f"no Target cell for {layer}:\n{self.app.text()}")
            up = float(now) < 0.5
            expected = f"{float(now) + (0.05 if up else -0.05):.2f}"
            return ("+" if up else "-"), lambda screen: target_of(screen, layer) == expected

        return self._run(count, press)

    def moves(self, count: int) -> tuple[list[float], int]:
        """`j`/`k` between the first two layers: ms until the cursor's colour is on the other row."""

        def press():
            at = cursor_layer(self.app.screen, self.normal)
            key, to = ("k", self.first) if at == self.second else ("j", self.second)
            return key, lambda screen: marked(screen, to, self.normal)

        return self._run(count, press)

    def _run(self, count: int, press) -> tuple[list[float], int]:
        times, missed = [], 0
        for _ in range(count):
            self.app.settle(self.interval)
            self.app.drain()
            key, shown = press()
            written = self.app.write(key)
            echoed = self.app.wait_for(shown, self.timeout)
            if echoed is None:
                missed += 1
            else:
                times.append((echoed - written) * 1000)
        return times, missed


def run_size(args: argparse.Namespace, cols: int, rows: int) -> list[tuple[str, str, list[float], int, str]]:
    """One app in a pty of cols x rows: idle, scan, finetune. Rows of (phase, keys, ms, missed, note)."""
    results = []
    argv = [PYTHON, "-m", "prunetui", "--model", args.model, "--data", args.data, "--device", "cpu"]
    with tempfile.TemporaryDirectory() as folder:
        app = AppInPty(argv, cols, rows, Path(folder))
        try:
            started = time.perf_counter()
            if app.wait_for(ready, args.start_timeout) is None:
                raise RuntimeError(
                    f"the workbench was not ready within {args.start_timeout:.0f} s:\n{app.text()}"
                )
            app.settle(0.5)
            print(f"  ready after {time.perf_counter() - started:.1f} s", flush=True)
            presses = Presses(app, args.interval, args.timeout)
            keep(args, f"{cols}x{rows} ready", app)

            for phase, start in (("idle", None), ("scan", start_scan), ("finetune", start_finetune)):
                if start is not None:
                    start(app, args)
                    keep(args, f"{cols}x{rows} {phase} started", app)
                kinds = [("j/k", presses.moves)]
                if phase != "finetune":  # target edits wait while a job changes the model
                    kinds.insert(0, ("+/-", presses.nudges))
                for keys, measure in kinds:
                    times, missed = measure(args.presses)
                    app.drain()
                    note = ""
                    if start is not None and not job_running(app.screen):
                        note = "the job ended before the last press"
                    results.append((phase, keys, times, missed, note))
                    print(f"  {line(phase, keys, times, missed)} {note}", flush=True)
                    if args.verbose:
                        print("    " + " ".join(f"{t:.0f}" for t in times), flush=True)
                if start is not None:
                    keep(args, f"{cols}x{rows} {phase} after the presses", app)
                    app.write("x")  # cancel the job
                    if app.wait_for(lambda screen: not job_running(screen), 60) is None:
                        raise RuntimeError(f"{phase} not cancelled within 60 s:\n{app.text()}")
                    app.settle(1.0)
            print(f"  {app.raw_bytes / 1e6:.1f} MB of output", flush=True)
        finally:
            app.close()
    return results


def start_scan(app: AppInPty, args: argparse.Namespace) -> None:
    app.write("s")
    if app.wait_for(job_running, 30) is None:
        raise RuntimeError(f"the scan did not start:\n{app.text()}")
    app.settle(1.0)


def start_finetune(app: AppInPty, args: argparse.Namespace) -> None:
    app.write("5")  # a target to prune to: the dialog prunes first
    app.settle(0.5)
    app.write("f")
    if app.wait_for(lambda screen: "Epochs" in "\n".join(screen.display), 30) is None:
        raise RuntimeError(f"no finetune dialog:\n{app.text()}")
    app.settle(0.3)
    # backspaces over the default, then the epochs, one key per write: Textual drops what follows a
    # backspace in the same read
    for key in ["\x7f"] * 4 + list(str(args.epochs)):
        app.write(key)
        app.settle(0.1)
    app.write("\r")
    if app.wait_for(lambda screen: "Epochs" not in "\n".join(screen.display), 30) is None:
        raise RuntimeError(f"the finetune dialog did not close:\n{app.text()}")
    # past the prune and the evaluation before it, into the epochs: "train epoch 1 batch 1/4 ... 5%"
    if app.wait_for(training, 180) is None:
        raise RuntimeError(f"the finetune did not start training within 180 s:\n{app.text()}")


def keep(args: argparse.Namespace, title: str, app: AppInPty) -> None:
    if args.screens:
        with open(args.screens, "a", encoding="utf-8") as out:
            out.write(f"==== {title}\n{app.text()}\n")


def summary(times: list[float]) -> str:
    if not times:
        return "no echo"
    p90 = statistics.quantiles(times, n=10, method="inclusive")[-1] if len(times) > 1 else times[0]
    return f"median {statistics.median(times):6.1f} ms, p90 {p90:6.1f}, max {max(times):6.1f}, min {min(times):5.1f}"


def line(phase: str, keys: str, times: list[float], missed: int) -> str:
    lost = f", {missed} not echoed" if missed else ""
    return f"{phase:<8} {keys:<4} {summary(times)} ({len(times)} presses{lost})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="120x40,80x24", help="pty sizes, COLSxROWS, comma-separated")
    parser.add_argument("--presses", type=int, default=30, help="per phase and key kind")
    parser.add_argument(
        "--interval", type=float, default=0.15, help="seconds between an echo and the next key"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a key may take to show")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--model", default="vgg-cifar")
    parser.add_argument("--data", default="random:512:3x32x32")
    parser.add_argument("--epochs", type=int, default=5, help="the finetune's (it is cancelled when done)")
    parser.add_argument("--verbose", action="store_true", help="print every press's ms, in order")
    parser.add_argument("--screens", help="append the screen's text at each phase to this file")
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # exit through the finally blocks that kill the app
        signal.signal(sig, lambda number, frame: sys.exit(128 + number))
    sys.setswitchinterval(0.0005)  # the reader thread timestamps a chunk soon after it arrives
    print(f"{args.model} on {args.data}, cpu; cores {os.cpu_count()}; load {os.getloadavg()[0]:.1f}")
    table = []
    for size in args.sizes.split(","):
        cols, rows = (int(n) for n in size.lower().split("x"))
        print(f"{cols}x{rows}:", flush=True)
        table += [(f"{cols}x{rows}", *row) for row in run_size(args, cols, rows)]
    print(
        f"\nload {os.getloadavg()[0]:.1f}; key echo, write to first output showing it (goal: median < 100 ms)"
    )
    for size, phase, keys, times, missed, note in table:
        print(f"{size:>7} {line(phase, keys, times, missed)}{'  (' + note + ')' if note else ''}")


if __name__ == "__main__":
    main()
