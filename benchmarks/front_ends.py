"""The same work in both front ends: `prunetui prune` against the TUI driven by keys, each a fresh process.

    python benchmarks/front_ends.py [--pairs 4] [--epochs 5] [--threads N]

Work: the demo model on its digits, on the CPU, a profile pruning every layer to 50%, pruned from dense
then finetuned for --epochs epochs. Each run is a new process in a new temporary working directory:
- CLI: `prunetui --profile P --device cpu [--threads N] prune --finetune E`, from start to exit.
- TUI: this file with --tui-once: the real PruneApp, headless (`run_test`), given the opener `run_app`
  gets from `prunetui` (the command line's `open_from_args`, so the same thread policy); once the dense
  evaluation is done it presses `p`, waits for the prune, presses `f`, types the epochs, `enter`, and
  quits when the finetune job has ended.
Measured per run: wall seconds from process start to exit, and the process's CPU seconds; the stages in
between from the two run records both sides write (prune, finetune: when each started, the finetune's
seconds): start to the prune, prune to the finetune (the TUI: with the keys and the dialog), the finetune,
its end to exit. After one untimed run of each, pairs alternate order (CLI TUI, TUI CLI, ...): the ratios
TUI/CLI are taken pair by pair. Both sides' records must agree on threads, epochs, device and recipe.
Without --threads both run under the default policy ($PRUNETUI_THREADS removed: torch's default).
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

LAYERS = ["backbone.conv1.weight", "backbone.conv2.weight", "backbone.conv3.weight", "backbone.conv4.weight",
          "classifier.weight"]  # fmt: skip
MEASURES = {  # seconds from the process's start, or of one stage; the stages come from the run records
    "open": "start to the prune's start (imports, opening, dense accuracy)",
    "prune": "prune's start to the finetune's start",
    "ft": "finetune (the record's seconds)",
    "tail": "finetune end to exit",
    "end": "start to finetune end",
    "exit": "start to exit",
    "cpu": "CPU seconds of the process",
}


def write_profile(folder: Path) -> Path:
    path = folder / "half.toml"
    lines = ['name = "half"', 'model = "demo"', "", "[sparsity]"] + [f'"{name}" = 0.5' for name in LAYERS]
    path.write_text("\n".join(lines) + "\n")
    return path


def command(side: str, profile: Path, epochs: int, threads: int | None) -> list[str]:
    policy = ["--threads", str(threads)] if threads else []
    opened = ["--profile", str(profile), "--device", "cpu", *policy]
    if side == "cli":
        return [str(Path(sys.executable).parent / "prunetui"), *opened, "prune", "--finetune", str(epochs)]
    return [sys.executable, __file__, "--tui-once", *opened, "--epochs", str(epochs)]


def run_once(side: str, epochs: int, threads: int | None) -> dict:
    """One process in a fresh working directory: its times and what its finetune run record says."""
    env = {k: v for k, v in os.environ.items() if k not in ("PRUNETUI_THREADS", "PRUNETUI_STATE_DIR")}
    with tempfile.TemporaryDirectory() as folder:
        cmd = command(side, write_profile(Path(folder)), epochs, threads)
        epoch, started, cpu = time.time(), time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{side} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        records = {}
        for path in Path(folder, ".prunetui", "runs").glob("*.json"):
            record = json.loads(path.read_text())
            records[record["kind"]] = record
    prune, ft = records["prune"], records["finetune"]

    def since_start(record: dict) -> float:
        return datetime.fromisoformat(record["started"]).timestamp() - epoch

    end = since_start(ft) + ft["seconds"]
    return {
        "open": since_start(prune), "prune": since_start(ft) - since_start(prune), "ft": ft["seconds"],
        "tail": wall - end, "end": end, "exit": wall,
        "cpu": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "kinds": sorted(records), "epochs": len(ft["epochs"]), "threads": ft["environment"]["threads"],
        "device": ft["device"], "accuracy": ft["accuracy_after"],
        "work": json.dumps([ft["recipe"][k] for k in ("plan", "start", "recovery", "finetune")]),
        "job_end": json.loads(done.stdout.strip().splitlines()[-1])["job_end"] - epoch if side == "tui" else None,
    }  # fmt: skip


# --- the TUI side, in its own process ----------------------------------------------------------------
def tui_once(profile: str, device: str, epochs: int, threads: int | None) -> None:
    from prunetui.cli import build_parser
    from prunetui.tui.app import PruneApp

    args = build_parser().parse_args(
        ["--profile", profile, "--device", device, *(["--threads", str(threads)] if threads else [])]
    )

    def opener():  # cli._open_quietly, what `prunetui` hands run_app: torch is imported in its thread
        from prunetui import commands

        return commands.open_from_args(args, print_notes=False)

    app = PruneApp(opener=opener, model_spec="demo")
    app.animation_level = "none"
    asyncio.run(drive(app, epochs))


async def drive(app, epochs: int) -> None:
    state = app.workbench  # the screen that holds the session and `busy`
    async with app.run_test(size=(120, 40)) as pilot:

        async def until(condition, timeout: float = 300) -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                if time.monotonic() > deadline:
                    raise TimeoutError("the app did not get there")
                await pilot.pause(0.02)

        def finetuned() -> bool:
            run = state.session.current_run
            return run is not None and run.kind == "finetune" and not state.busy

        await until(lambda: state.session is not None and state.session.accuracy is not None)
        await until(lambda: not state.busy)  # the dense evaluation's job has ended
        await pilot.press("p")
        await until(lambda: not state.busy and not state.session.is_dense)
        await pilot.press("f")
        await until(lambda: bool(app.screen.query("#epochs")))
        field = app.screen.query_one("#epochs")
        await pilot.press("end", *["backspace"] * len(field.value), *str(epochs))
        assert field.value == str(epochs), field.value
        await pilot.press("enter")
        await until(finetuned)
        print(json.dumps({"job_end": time.time()}), flush=True)
        app.exit()


# --- the comparison ----------------------------------------------------------------------------------
def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="CLI/TUI pairs, alternating order")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, help="--threads N for both (default: the default policy)")
    parser.add_argument("--tui-once", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tui_once:
        tui_once(args.profile, args.device, args.epochs, args.threads)
        return

    policy = f"--threads {args.threads}" if args.threads else "default thread policy"
    print(f"demo, digits, cpu, 50% of every layer, {args.epochs} epochs, {policy}, {os.cpu_count()} cores")
    for side in ("cli", "tui"):
        run_once(side, args.epochs, args.threads)  # untimed: file caches, compiled bytecode
    runs: dict[str, list[dict]] = {"cli": [], "tui": []}
    for pair in range(args.pairs):
        for side in ("cli", "tui") if pair % 2 == 0 else ("tui", "cli"):
            run = run_once(side, args.epochs, args.threads)
            runs[side].append(run)
            seen = f", job end seen {run['job_end']:.2f}" if run["job_end"] is not None else ""
            print(f"  pair {pair + 1} {side}: exit {run['exit']:6.2f} s, finetune end {run['end']:6.2f} s, "
                  f"finetune {run['ft']:5.2f} s{seen}, CPU {run['cpu']:5.2f} s; {run['threads']} threads, "
                  f"{run['epochs']} epochs, {run['device']}, runs {'+'.join(run['kinds'])}, "
                  f"best {run['accuracy']:.2f}%")  # fmt: skip
    every = runs["cli"] + runs["tui"]
    for key in ("threads", "epochs", "device", "work"):
        values = {str(r[key]) for r in every}
        print(f"same {key} on both sides: {'yes' if len(values) == 1 else 'NO: ' + ' | '.join(values)}")
    print("\n| measure | CLI s, median (min-max) | TUI s, median (min-max) | TUI/CLI, median (min-max) |")
    print("|---|---|---|---|")
    for key, name in MEASURES.items():
        cli, tui = [r[key] for r in runs["cli"]], [r[key] for r in runs["tui"]]
        ratios = [t / c for t, c in zip(tui, cli, strict=True)]
        print(f"| {name} | {spread(cli)} | {spread(tui)} | {spread(ratios, 3)} |")


if __name__ == "__main__":
    main()
