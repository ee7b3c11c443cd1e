"""What both benchmarks measure with: wall and CPU seconds, and how late a UI thread would answer."""

import statistics
import threading
import time
from collections.abc import Callable


def timed(run: Callable[..., object], *args) -> tuple[object, float, float]:
    """(run(*args), wall seconds, CPU seconds of this process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def abba(rounds: int) -> list[str]:
    """Run order "reference", "ours", "ours", "reference", ...: a drift in the machine's load falls on
    both alike."""
    order = ["reference", "ours", "ours", "reference"] * (rounds // 2)
    return order + (["reference", "ours"] if rounds % 2 else [])


def means(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """Mean wall and CPU seconds of (wall, cpu) samples."""
    return statistics.mean(s[0] for s in samples), statistics.mean(s[1] for s in samples)


class LatenessProbe:
    """How late a 20 ms timer fires on its own thread while a job runs: what a key press would wait
    for the Python interpreter (the TUI's event loop needs the GIL to answer)."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.lateness, self._stop = interval, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(self.interval)
            self.lateness.append(time.perf_counter() - started - self.interval)

    def __enter__(self) -> "LatenessProbe":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        ms = sorted(x * 1000 for x in self.lateness)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return f"timer lateness median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
