"""The headless commands behind `prunetui info | scan | prune | runs | resume | suggest`.

Each one calls the workflow step (prunetui.workflow.steps) that the TUI calls too, prints its lines,
and returns the JSON document PRODUCT.md specifies. Human lines go to stdout, or to stderr when the
caller prints JSON on stdout. While a job runs, a progress bar on stderr says what it is on, how far
and the time left (prunetui.cli_progress), when stderr is a terminal.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from prunetui import cli_groups
from prunetui.cli_progress import progress_bar, with_bar
from prunetui.core.accel import Acceleration
from prunetui.core.evaldata import standard_error
from prunetui.core.events import Event, ScanPoint, sparsity_text
from prunetui.core.profile import resolve_layer_names, save_profile, split_layer_names
from prunetui.core.recipe import Outputs, Processes, Recipe
from prunetui.core.runs import RunRecord
from prunetui.core.scan_memory import memory_json
from prunetui.core.sensitivity import ScanOptions, ScanResult
from prunetui.core.session import Session
from prunetui.errors import UserError
from prunetui.workflow import channel_steps, quantizing, replaying, steps, suggesting
from prunetui.workflow.channel_steps import run_cost_row
from prunetui.workflow.goals import goal_from_flags
from prunetui.workflow.opening import Opened, Request, open_session
from prunetui.workflow.run import run_recipe

__all__ = ["open_from_args", "open_session"]


def open_from_args(args: argparse.Namespace, print_notes: bool = True) -> Opened:
    """Open the session the command line names; notes (random weights, warnings) and a progress bar
    (listing channel groups) go to stderr, or the notes stay in `Opened.notes` for the TUI's log."""
    request = Request(
        model=args.model,
        checkpoint=args.checkpoint,
        checkpoint_key=getattr(args, "checkpoint_key", None),
        data=args.data,
        device=args.device,
        profile=args.profile,
        method=getattr(args, "method", None),
        regrow=getattr(args, "regrow", False),
        state_dir=getattr(args, "state_dir", None),
        threads=getattr(args, "threads", None),
    )
    if print_notes:
        with progress_bar(_console(True)) as (_, bar):
            opened = open_session(request, report=bar)
    else:
        opened = open_session(request)
    for note in opened.notes if print_notes else ():
        print(note if note.startswith("warning:") else f"note: {note}", file=sys.stderr)
    return opened


def _console(as_json: bool) -> Console:
    return Console(stderr=as_json, highlight=False)


def _sayer(console: Console) -> steps.Say:
    def say(text: str, style: str = "") -> None:
        console.print(text, style=style or None, markup=False, soft_wrap=True)

    return say


def info(opened: Opened, as_json: bool) -> dict:
    session = opened.session
    layers = session.layers()
    sparse = session.current_size()
    groups = cli_groups.groups_json(session)  # --method channel: the groups a profile sets
    if not as_json:
        table = Table(title=f"{session.label} on {session.device}")
        for column in ("Layer", "Kind", "Shape", "Params", "Share", "Zeros"):
            table.add_column(column, justify="left" if column in ("Layer", "Kind") else "right")
        for layer in layers:
            shape = "x".join(map(str, layer.shape))
            table.add_row(
                layer.name,
                layer.kind,
                shape,
                f"{layer.params:,}",
                f"{layer.share:.1%}",
                f"{layer.zero_fraction:.1%}",
            )
        console = _console(False)
        console.print(table)
        console.print(
            f"dense size={session.dense_size:.2f} MiB, current size={sparse:.2f} MiB "
            f"= {session.percent(sparse):.2f}% of dense"
        )
        cli_groups.print_groups(console, groups["groups"]) if groups else None
    return {
        "model": session.label,
        "device": str(session.device),
        "method": session.method.name,
        "dense_size_mib": session.dense_size,
        "sparse_size_mib": sparse,
        "percent_of_dense": session.percent(sparse),
        "layers": [
            {
                "name": layer.name,
                "kind": layer.kind,
                "shape": list(layer.shape),
                "params": layer.params,
                "zero_fraction": layer.zero_fraction,
                "target": session.targets.get(layer.name, 0.0),
            }
            for layer in layers
        ],
        **groups,
        **cli_groups.targets_json(session),  # patterns, targets: what the profile's globs resolved to
    }


def scan_options(args: argparse.Namespace) -> dict:
    """--eval-size, --amp, --activation-budget (bytes by now) and --no-cache as the keyword arguments
    of `scan`."""
    recalibrate = getattr(args, "recalibrate_bn", False)
    options = ScanOptions(
        eval_size=args.eval_size,
        accel=Acceleration(amp=args.amp),
        recalibrate=recalibrate,
        activation_budget=args.activation_budget,
    )
    return {"options": options, "use_cache": not args.no_cache}


def _layer_list(text: str | None, session: Session, flag: str) -> list[str]:
    """Names typed for `flag`, as the session's method's units (layers, or channel groups)."""
    if not text:
        return []
    units = [unit.name for unit in session.units()]
    names = split_layer_names(text, units)  # a comma inside a real name stays
    return resolve_layer_names(names, units, f"{flag}: ")  # conv0.weight: the full name


def scan(
    opened: Opened,
    sparsities: list[float],
    layers: str | None,
    as_json: bool,
    processes: Processes = Processes(),
    options: ScanOptions | None = None,
    use_cache: bool = True,
) -> dict:
    session = opened.session
    steps.require_data(session, "scan")
    names = _layer_list(layers, session, "--layers") or session.unit_names()
    row: list[str] = []
    header = f"{'sparsity':<32} " + " ".join(f"{sparsity_text(s):>6}" for s in sparsities)
    headed = False  # the header comes with the first point: a warning said before it stays above the table
    with progress_bar(_console(as_json)) as (console, bar):

        def report(event: Event) -> None:
            nonlocal headed
            if isinstance(event, ScanPoint):
                if not headed:
                    console.print(header, markup=False, soft_wrap=True)
                    headed = True
                row.append(f"{event.accuracy:6.2f}")
                if len(row) == len(sparsities):
                    console.print(f"{event.layer:<32} " + " ".join(row), markup=False, soft_wrap=True)
                    row.clear()

        result = steps.scan(
            session,
            _sayer(console),
            with_bar(bar, report),
            None,
            sparsities,
            names,
            options,
            use_cache,
            processes,
        )
        console.print(_scan_details(result), style="dim", soft_wrap=True)
    return {
        "model": session.label,
        "method": session.method.name,
        "sparsities": result.sparsities,
        "dense_accuracy": result.base_accuracy,
        "layers": result.layers,
        "seconds": result.seconds,
        "path": result.path,
        "cached": result.cached,
        "eval_images": result.images,
        "standard_error": result.standard_error(),
        "recalibrate_bn": bool(options and options.recalibrate),
        **memory_json(result.memory),  # activation_budget_mib, planned_peak_mib, peak_memory_mib
    }


def _scan_details(result: ScanResult) -> str:
    """Where the numbers came from and how precise they are: the standard error of the scanned model's
    accuracy, and the largest any point on these images can have (an accuracy near 50%)."""
    source = "from the cache" if result.cached else f"{result.path} path"
    error, images = result.standard_error(), result.images
    if error is None:
        return source
    at = f"±{error:.2f} points at {result.base_accuracy:.2f}% accuracy"
    return f"{source}, {images} images, standard error {at}, up to ±{standard_error(50.0, images):.2f} for a point near 50%"


def prune(opened: Opened, recipe: Recipe, as_json: bool, latency_batch: int = 1) -> dict:
    """Run `recipe` (its plan: the profile's targets by its method, or --method) and report it."""
    session = opened.session
    profile_name = opened.profile.name if opened.profile else "custom"
    recipe = quantizing.with_layer_bits(
        replace(recipe, plan=session.plan(), name=profile_name), session.layer_bits
    )
    session.cost.latency_batch = latency_batch
    with progress_bar(_console(as_json)) as (console, bar):
        outcome = run_recipe(session, recipe, _sayer(console), bar)
    result = outcome.result
    size = session.current_size()
    actual, start = session.state.sparsity(), session.state.start_sparsity()
    return {
        "model": session.label,
        "profile": profile_name,
        "method": session.method.name,
        "dense_size_mib": session.dense_size,
        "sparse_size_mib": size,
        "percent_of_dense": session.percent(size),
        "accuracy_dense": outcome.accuracy_dense,
        "accuracy_before": outcome.pruned.accuracy_before if outcome.pruned else None,
        "accuracy_after": result.best_accuracy if result else None,
        "accuracy_recalibrated": outcome.accuracy_recalibrated,
        "schedule": recipe.recovery.schedule,
        "distill": recipe.recovery.distill,
        "epochs": [{"epoch": e.epoch, "accuracy": e.accuracy, "best": e.best_accuracy} for e in result.epochs]
        if result
        else [],
        **session.run_cost(),  # macs_dense, macs, params_dense, params, latency_ms_dense, latency_ms
        **channel_steps.channels_json(session),
        "run": _run_number(session, session.current_run),
        "written": outcome.written,
        **quantizing.prune_json(session, outcome.quantized, outcome.written),
        **cli_groups.targets_json(session),  # patterns, targets: what the profile's globs resolved to
        "layers": [
            {"name": n, "target": session.targets[n], "sparsity": actual[n], "start_sparsity": start[n]}
            for n in session.layer_names
        ],
    }


def _run_number(session: Session, run: RunRecord | None) -> int | None:
    """The run's `#` in `prunetui runs` (what resume and replay take)."""
    if run is None:
        return None
    return next((number for number, r in enumerate(session.runs(), 1) if r.id == run.id), None)


def run_row(run: RunRecord, number: int | None) -> dict:
    """One run as `runs --json` and `resume --json` give it: the keys `prune --json` uses, and `number`,
    its `#` in `prunetui runs` (what `prunetui resume N` takes)."""
    return {
        "number": number, "id": run.id, "name": run.name, "kind": run.kind, "status": run.status,
        "started": run.started, "parent": run.parent, "method": run.method, "dense_size_mib": run.dense_size_mib,
        "sparse_size_mib": run.sparse_size_mib, "percent_of_dense": run.percent_of_dense,
        "accuracy_dense": run.accuracy_dense, "accuracy_before": run.accuracy_before,
        "accuracy_after": run.accuracy_after, "epochs": len(run.epochs), "lr": run.lr,
        "seconds": run.seconds, "device": run.device, "profile": run.profile, "start": run.start,
        "note": run.note, "schedule": run.schedule, "distill": run.distill,
        "accuracy_recalibrated": run.accuracy_recalibrated, "weights": run.weights,
        "recipe": run.recipe, **run_cost_row(run), **quantizing.run_figures(run),
    }  # fmt: skip


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def runs(opened: Opened, as_json: bool) -> dict:
    """The runs recorded in this working directory for this model, oldest first."""
    session = opened.session
    records = session.runs()
    for path in session.recorder.store.unreadable:
        print(f"warning: skipped unreadable run record {path}", file=sys.stderr)
    if not as_json:
        table = Table(title=f"runs of {session.label} in {Path.cwd()}", box=box.SIMPLE_HEAD, pad_edge=False)
        several_methods = len({run.method for run in records}) > 1  # else the column says nothing
        columns = ("#", "Name", "Method", "Status", "MiB", "%dense", "Before", "After", "Ep")
        for column in columns if several_methods else tuple(c for c in columns if c != "Method"):
            table.add_column(
                column, justify="left" if column in ("Name", "Method", "Status") else "right", no_wrap=True
            )
        for number, run in enumerate(records, 1):
            cells = [
                str(number), run.name, run.method, run.status, f"{run.sparse_size_mib:.2f}",
                f"{run.percent_of_dense:.2f}", _accuracy(run.accuracy_before), _accuracy(run.accuracy_after),
                str(len(run.epochs) or ""),
            ]  # fmt: skip
            table.add_row(*(cells if several_methods else cells[:2] + cells[3:]))
        _console(False).print(table if records else "No runs recorded here yet for this model.")
        for number, run in enumerate(records, 1):
            if run.note:
                _console(False).print(f"  {number}: {run.note}", markup=False, highlight=False)
    return {"model": session.label, "runs": [run_row(r, number) for number, r in enumerate(records, 1)]}


def resume(opened: Opened, run_id: str, as_json: bool, processes: Processes, outputs: Outputs) -> dict:
    """Go on with an interrupted finetune from its last completed epoch; then write what the run asked
    for (`outputs`, when given, instead)."""
    session = opened.session
    given = outputs if (outputs.checkpoint or outputs.onnx or outputs.onnx_int8) else None
    if given is not None:
        steps.check_outputs(given)
    multi = processes if processes.distributed else None
    with progress_bar(_console(as_json)) as (console, bar):
        steps.resume(session, run_id, _sayer(console), bar, processes=multi, outputs=given)
    run = session.current_run
    return run_row(run, _run_number(session, run))


def replay(opened: Opened, run_id: str, as_json: bool) -> dict:
    """Run a recorded run again from the model as opened and compare every figure it recorded."""
    session = opened.session
    with progress_bar(_console(as_json)) as (console, bar):
        outcome = replaying.replay(session, run_id, _sayer(console), bar)
    return outcome.as_json()


def suggest(
    opened: Opened,
    goal_flags: tuple[str | None, float | None, bool],
    sparsities: list[float],
    lock: str | None,
    out: str | None,
    as_json: bool,
    recalibrate: bool = False,
    use_global: bool = False,
    cap: float | None = None,
    measures: int = suggesting.MEASURES,
    activation_budget: int | None = None,
) -> dict:
    """Scan, propose targets for the goal, measure them against uniform and global pruning at the same
    size and refine them (or `use_global`: global pruning at the budget); prune to them and measure."""
    session = opened.session
    steps.require_data(session, "suggest")
    locked_names = _layer_list(lock, session, "--lock")
    goal = goal_from_flags(*goal_flags, session.dense_size)
    if out and Path(out).exists():
        raise UserError(f"{out} exists (choose another name)")
    with progress_bar(_console(as_json)) as (console, bar):
        say = _sayer(console)
        outcome = suggesting.suggest(
            session, goal, say, sparsities, locked_names, bar, recalibrate=recalibrate,
            use_global=use_global, cap=cap, measures=measures, activation_budget=activation_budget,
        )  # fmt: skip
        proposal = outcome.suggestion
        for name in session.layer_names:
            console.print(f"  {name}: {proposal.targets.get(name, 0.0):.4g}", markup=False)
        say(suggesting.suggested_line(session, outcome))
        if out:
            how = "global pruning" if use_global else "a sensitivity scan, measured and refined"
            save_profile(session.profile(Path(out).stem, f"suggested by prunetui from {how}"), out)
            say(f"Wrote {out}")
    return {
        "model": session.label,
        "method": session.method.name,
        "goal": goal.as_json(),
        "sparsities": outcome.scan.sparsities if outcome.scan else [],
        "base_accuracy": outcome.scan.base_accuracy if outcome.scan else session.dense_accuracy,
        "predicted_accuracy": proposal.predicted_accuracy,
        "accuracy_before": outcome.accuracy_before,
        "accuracy_recalibrated": outcome.accuracy_recalibrated,
        "recalibrate_bn": recalibrate,
        "source": proposal.source,
        **suggesting.measured_json(session, outcome.measured),
        "sparse_size_mib": proposal.size_mib,
        "percent_of_dense": session.percent(proposal.size_mib),
        "targets": proposal.targets,
        "locked": locked_names,
    }
