"""The parent side of a distributed job: torchrun started in its own session, its JSON lines turned
back into the core events the in-process jobs report, cancel and failures handled, the result collected.

`Launcher.finetune` and `Launcher.scan` keep the contracts of core.finetune.finetune and
core.sensitivity.scan, so a Session runs either the same way.
"""

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import prunetui
from prunetui.core.evaluate import model_device
from prunetui.core.events import Report, ScanPoint
from prunetui.core.finetune import FinetuneResult, restore, snapshot
from prunetui.core.layers import prunable_parameters
from prunetui.core.model_state import ModelState
from prunetui.core.recipe import Processes, Recipe
from prunetui.core.scan_cache import ScanJob
from prunetui.core.sensitivity import ScanResult
from prunetui.core.training import FinetuneJob
from prunetui.distributed.protocol import (
    decode,
    eval_settings,
    finetune_result,
    kept_note,
    loader_settings,
    to_event,
)
from prunetui.errors import JobFailed, UserError

GRACE_SECONDS = 10.0  # after SIGTERM, before SIGKILL
LOG_TAIL_LINES = 5
# torchrun's failure summary ("rank : 1 (local_rank: 1)" then "exitcode : -9 (pid: 123)") and its own stops
_FAILURE = re.compile(r"^\s*rank\s*:\s*(\d+).*\n\s*exitcode\s*:\s*(-?\d+) \(pid: (\d+)\)", re.MULTILINE)
_STOPPED = re.compile(r"Sending process (\d+) closing signal")


@dataclass(frozen=True)
class Launcher:
    """Runs finetunes and scans over `processes` (core.recipe.Processes) under torchrun.

    The processes rebuild the model and the data from their specs, so both must be specs, not objects;
    then the channel stages of the model in hand (`state`), then its weights, sent by this process.
    """

    model_spec: str
    data_spec: str
    processes: Processes = Processes()
    state: ModelState | None = None  # None: the spec's architecture as built

    def __post_init__(self):
        if self.processes.nproc < 1:
            raise UserError(f"the process count must be 1 or more, got {self.processes.nproc}")

    @property
    def nproc(self) -> int:
        return self.processes.nproc

    def finetune(self, work: FinetuneJob) -> FinetuneResult:
        """core.finetune.run's contract, the epochs run by torchrun. The loaders only lend their batch
        sizes and shuffling: the global batch stays what it is in one process. The teacher of a
        distilling run is rebuilt in every process from the spec, the stages the model was opened with
        and its weights.

        The model ends holding the best epoch's weights. When a rank fails this raises JobFailed, the
        model holding the best weights of the epochs that completed (unchanged if none did).
        """
        model, report, save_state = work.model, work.report, work.save_state
        job = self.finetune_job(model, work.train_batches, work.eval_batches, work.recipe)
        teacher_state = snapshot(work.teacher) if work.teacher is not None else None
        inputs = {
            "model": snapshot(model),
            "masks": work.masks,
            "resume": work.resume,
            "teacher": teacher_state,
        }
        state = work.resume
        with Run(self.command(), job, inputs, self.environment()) as run:
            for message in run.messages(work.cancel):
                if message["type"] == "epoch_end":
                    state = run.epoch_state(message["epoch"], model_device(model))
                    if save_state is not None:
                        save_state(state)
                report(to_event(message))
            if state is not None:
                restore(model, state["best_model"])
            model.eval()
            failure = run.failure()
        result = finetune_result(state, run.cancelled)
        if failure is not None:
            raise JobFailed(f"distributed finetune failed: {failure}{kept_note(result)}")
        return result

    def scan(self, work: ScanJob, scores: dict[str, torch.Tensor] | None = None) -> ScanResult:
        """core.scan_cache's runner contract (`scores`: the criterion's, sent to every rank), the layers
        dealt to the ranks; the model is not touched."""
        model, report, base_accuracy = work.model, work.report, work.base_accuracy
        layers, sparsities = work.layers, work.sparsities
        started = time.perf_counter()
        names = list(layers) if layers is not None else list(prunable_parameters(model))
        sparsities = [float(s) for s in sparsities]
        job = {**self._job("scan", model), **eval_settings(work.batches)}
        job |= {"sparsities": sparsities, "layers": names, "base_accuracy": base_accuracy}
        points = LayerOrder(names, sparsities, report)
        inputs = {"model": snapshot(model), "masks": {}, "scores": scores}
        with Run(self.command(), job, inputs, self.environment()) as run:
            for message in run.messages(work.cancel):
                event = to_event(message)
                if isinstance(event, ScanPoint):
                    points.add(event)
                else:
                    report(event)
            failure = run.failure()
        if failure is not None:
            raise JobFailed(f"distributed scan failed: {failure}")
        if run.cancelled:
            result = ScanResult(sparsities, base_accuracy, points.complete_rows(), cancelled=True)
        else:
            result = ScanResult(**run.result["scan"])
            points.fill(result.layers)
        result.seconds = time.perf_counter() - started
        return result

    def finetune_job(
        self, model: nn.Module, train_batches: Iterable, eval_batches: Iterable, recipe: Recipe
    ) -> dict:
        """What every rank is told: specs, device type, batch sizes, shuffling seed, the recipe."""
        job = {**self._job("finetune", model), **loader_settings(train_batches, eval_batches)}
        return job | {"recipe": recipe.as_dict()}

    def command(self) -> list[str]:
        """torchrun (as `python -m torch.distributed.run`, so no PATH is needed); the job file follows."""
        processes = self.processes
        if processes.nnodes == 1 and processes.endpoint is None:
            where = ["--standalone"]
        else:
            where = ["--nnodes", str(processes.nnodes), "--rdzv-backend", "c10d"]
            where += ["--rdzv-endpoint", processes.endpoint, "--rdzv-id", "prunetui"]
        torchrun = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *where,
            "--nproc-per-node",
            str(self.nproc),
        ]
        return [*torchrun, "-m", "prunetui.distributed.worker"]

    def environment(self) -> dict[str, str]:
        """This process's environment; the CPU threads shared out between the processes, as torchrun
        would otherwise give each just one; this very prunetui importable."""
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.nproc)))
        root = str(Path(prunetui.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        return env

    def _job(self, kind: str, model: nn.Module) -> dict:
        """Specs, device type, and the channel stages: of the model in hand, and of the model as opened
        (a distilling run's teacher)."""
        state = self.state
        stages = [stage.as_dict() for stage in state.all_stages] if state else []
        opened = [stage.as_dict() for stage in state.opened_stages] if state else []
        return {
            "kind": kind, "model": self.model_spec, "data": self.data_spec, "device": self._device(model),
            "stages": stages, "teacher_stages": opened,
        }  # fmt: skip

    def _device(self, model: nn.Module) -> str:
        device = model_device(model)
        if device.type == "cuda" and torch.cuda.device_count() < self.nproc:
            raise UserError(
                f"{self.nproc} processes need {self.nproc} GPUs; {torch.cuda.device_count()} visible"
            )
        if device.type not in ("cpu", "cuda"):
            raise UserError(f"distributed jobs run on CPU (gloo) or CUDA (nccl), not {device.type}")
        return device.type


class LayerOrder:
    """Reports scan points one layer after another in the scan's order, as the in-process scan does: a
    row scanned by another rank waits until the rows before it are complete."""

    def __init__(self, names: list[str], sparsities: list[float], report: Report):
        self.names, self.sparsities, self.report = names, sparsities, report
        self.rows: dict[str, list[ScanPoint]] = {name: [] for name in names}
        self.current, self.reported = 0, 0  # the row being reported, and how many of its points were

    def add(self, point: ScanPoint) -> None:
        self.rows[point.layer].append(point)
        while self.current < len(self.names):
            row = self.rows[self.names[self.current]]
            for waiting in row[self.reported :]:
                self.report(waiting)
            self.reported = len(row)
            if len(row) < len(self.sparsities):
                return
            self.current, self.reported = self.current + 1, 0

    def fill(self, layers: dict[str, list[float]]) -> None:
        """Report the points that came only with the result (from ranks on other machines)."""
        for name, accuracies in layers.items():
            for sparsity, accuracy in list(zip(self.sparsities, accuracies, strict=False))[
                len(self.rows[name]) :
            ]:
                self.add(ScanPoint(name, sparsity, accuracy))

    def complete_rows(self) -> dict[str, list[float]]:
        return {
            name: [p.accuracy for p in row]
            for name, row in self.rows.items()
            if len(row) == len(self.sparsities)
        }


class Run:
    """One torchrun process group working in a temporary folder: its messages, its cancel, its failure.

    torchrun runs in a session of its own, so a Ctrl+C meant for prunetui reaches it only through
    prunetui, which then stops it; leaving the `with` block always stops it and removes the folder.
    """

    def __init__(self, command: list[str], job: dict, inputs: dict, env: dict[str, str]):
        self.folder = Path(tempfile.mkdtemp(prefix="prunetui-job-"))
        self.cancelled = False
        self.result: dict | None = None
        self.errors: list[dict] = []
        self.pids: list[int] = []  # the ranks on this machine, each leading its own process group
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        try:
            self.process = self._start(command, job, inputs, env)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        threading.Thread(target=self._read, daemon=True).start()

    def _start(self, command: list[str], job: dict, inputs: dict, env: dict[str, str]) -> subprocess.Popen:
        job_file = write_job(self.folder, job, inputs)
        with open(self.folder / "torchrun.log", "wb") as log:
            return subprocess.Popen(
                [*command, str(job_file)], stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
            )

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.stop()
        self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def messages(self, cancel: threading.Event | None) -> Iterator[dict]:
        """The event messages (progress, scan points, epoch ends) until the job ends or is cancelled."""
        while (line := self._next_line(cancel)) is not None:
            message = decode(line)
            kind = None if message is None else message["type"]
            if kind == "started":
                self.pids.append(message["pid"])
            elif kind == "error":
                self.errors.append(message)
            elif kind == "result":
                self.result = message
            elif kind is not None:
                yield message
        if not self.cancelled:
            self.process.wait()

    def _next_line(self, cancel: threading.Event | None) -> bytes | None:
        while True:
            if cancel is not None and cancel.is_set():
                self.cancelled = True
                self.stop()
                return None
            try:
                return self._lines.get(timeout=0.1)
            except queue.Empty:
                continue

    def stop(self) -> None:
        """SIGTERM to torchrun and to every rank here (torchrun also stops them), SIGKILL after a grace."""
        groups = [self.process.pid, *self.pids]
        _signal_groups(groups, signal.SIGTERM)
        try:
            self.process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_groups(groups, signal.SIGKILL)
            self.process.wait()

    def epoch_state(self, epoch: int, device: torch.device) -> dict:
        """The state the local leader wrote after `epoch`, read once then removed."""
        path = self.folder / f"state-{epoch}.pt"
        state = torch.load(path, map_location=device, weights_only=True)
        path.unlink()
        return state

    def failure(self) -> str | None:
        """What went wrong, naming the rank; None when the job succeeded or was cancelled."""
        if self.cancelled or (self.process.returncode == 0 and self.result is not None):
            return None
        log = _read_text(self.folder / "torchrun.log")
        died = self._died(log)
        if died:
            rank, code = died[0]
            return f"rank {rank} died ({_exit_text(code)}){_tail(self.folder / f'rank{rank}.log')}"
        if self.errors:
            first = self.errors[0]  # the others are usually their peers losing it
            return f"rank {first['rank']} failed: {first['message']}"
        return f"torchrun exited with code {self.process.returncode}{_tail(self.folder / 'torchrun.log')}"

    def _died(self, log: str) -> list[tuple[int, int]]:
        """(rank, exit code) of the ranks that ended without saying why and were not stopped by torchrun
        (a signal, os._exit): those are the cause, the errors of the others the consequence."""
        stopped = set(_STOPPED.findall(log))
        explained = {e["rank"] for e in self.errors}
        failures = [(int(rank), int(code), pid) for rank, code, pid in _FAILURE.findall(log)]
        return sorted(
            (rank, code) for rank, code, pid in failures if pid not in stopped and rank not in explained
        )


def write_job(folder: Path, job: dict, inputs: dict) -> Path:
    """The files the worker reads: `inputs.pt` (tensors) and the job file (JSON), whose path it returns."""
    torch.save(inputs, folder / "inputs.pt")
    job_file = folder / "job.json"
    job_file.write_text(json.dumps(job, indent=1), encoding="utf-8")
    return job_file


def _signal_groups(groups: list[int], sig: signal.Signals) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # that group has already exited
            os.killpg(group, sig)


def _exit_text(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _tail(path: Path) -> str:
    """The last lines a process wrote, indented under the error (empty when it wrote none here)."""
    lines = [line for line in _read_text(path).splitlines() if line.strip()][-LOG_TAIL_LINES:]
    return "".join(f"\n    {line}" for line in lines)
