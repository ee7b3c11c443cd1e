"""The headless commands behind `prunetui info | scan | prune`: open a session, run a job, report.

Each command returns the JSON document PRODUCT.md specifies; human lines go to stdout, or to stderr
when the caller prints JSON on stdout.
"""

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from prunetui.core import suggest as allocate
from prunetui.core.accel import Acceleration
from prunetui.core.device import resolve_device
from prunetui.core.evaldata import standard_error
from prunetui.core.events import EpochEnd, Event, ScanPoint
from prunetui.core.export import export_checkpoint
from prunetui.core.finetune import FinetuneSettings
from prunetui.core.profile import Profile, check_layer_names, load_profile, save_profile
from prunetui.core.runs import RunRecord, RunStore
from prunetui.core.scan_cache import scan_folder
from prunetui.core.sensitivity import ScanOptions, ScanResult
from prunetui.core.session import Origin, Session
from prunetui.errors import UserError
from prunetui.sources import load_data, load_model

if TYPE_CHECKING:
    from prunetui.dist.launch import Rendezvous
from prunetui.sources.fit import check_model_fits_data


@dataclass
class Opened:
    session: Session
    profile: Profile | None
    model_spec: str
    data_spec: str | None


def open_session(args: argparse.Namespace) -> Opened:
    """Model, checkpoint, data, device and profile from the command line, validated."""
    model_spec = args.model or "demo"
    device = resolve_device(args.device or "cpu")
    profile = load_profile(args.profile) if args.profile else None
    model, label = load_model(model_spec, args.checkpoint)
    data_spec = args.data or ("digits" if model_spec == "demo" else None)
    data = load_data(data_spec) if data_spec else None
    model = model.to(device)
    if data is not None:
        check_model_fits_data(model, data, device)
    origin = Origin(data_spec=data_spec, checkpoint=args.checkpoint)
    session = Session(model, data, label, origin, RunStore(Path.cwd()))
    session.scan_cache_folder = scan_folder(Path.cwd())
    if profile is not None:
        session.apply_profile(profile)
        if profile.model and profile.model != label:
            print(
                f"warning: profile '{profile.name}' was made for {profile.model}, not {label}",
                file=sys.stderr,
            )
    return Opened(session, profile, model_spec, data_spec)


def _console(as_json: bool) -> Console:
    return Console(stderr=as_json, highlight=False)


def _require_data(opened: Opened, what: str) -> None:
    if opened.session.data is None:
        raise UserError(f"{what} needs --data for model '{opened.model_spec}'")


def info(opened: Opened, as_json: bool) -> dict:
    session = opened.session
    layers = session.layers()
    sparse = session.current_size()
    if not as_json:
        table = Table(title=f"{session.label} on {session.device}")
        for column in ("Layer", "Kind", "Shape", "Params", "Share", "Zeros"):
            table.add_column(column, justify="left" if column in ("Layer", "Kind") else "right")
        for info in layers:
            shape = "x".join(map(str, info.shape))
            table.add_row(
                info.name,
                info.kind,
                shape,
                f"{info.params:,}",
                f"{info.share:.1%}",
                f"{info.zero_fraction:.1%}",
            )
        console = _console(False)
        console.print(table)
        console.print(
            f"dense size={session.dense_size:.2f} MiB, current size={sparse:.2f} MiB "
            f"= {session.percent(sparse):.2f}% of dense"
        )
    return {
        "model": session.label,
        "device": str(session.device),
        "dense_size_mib": session.dense_size,
        "sparse_size_mib": sparse,
        "percent_of_dense": session.percent(sparse),
        "layers": [
            {
                "name": i.name,
                "kind": i.kind,
                "shape": list(i.shape),
                "params": i.params,
                "zero_fraction": i.zero_fraction,
            }
            for i in layers
        ],
    }


def processes(args: argparse.Namespace) -> dict:
    """--nproc, --nnodes and --rdzv-endpoint as the keyword arguments of Session's jobs."""
    rendezvous = None
    if args.nnodes > 1 or args.rdzv_endpoint is not None:
        from prunetui.dist.launch import Rendezvous

        rendezvous = Rendezvous(args.nnodes, args.rdzv_endpoint)
    return {"nproc": args.nproc, "rendezvous": rendezvous}


def scan_options(args: argparse.Namespace) -> dict:
    """--eval-size, --amp and --no-cache as the keyword arguments of `scan`."""
    options = ScanOptions(eval_size=args.eval_size, accel=Acceleration(amp=args.amp))
    return {"options": options, "use_cache": not args.no_cache}


def scan(
    opened: Opened,
    sparsities: list[float],
    layers: str | None,
    as_json: bool,
    nproc: int = 1,
    rendezvous: "Rendezvous | None" = None,
    options: ScanOptions | None = None,
    use_cache: bool = True,
) -> dict:
    _require_data(opened, "scan")
    session = opened.session
    names = [n.strip() for n in layers.split(",") if n.strip()] if layers else session.layer_names
    check_layer_names(names, session.layer_names)
    console = _console(as_json)
    row: list[str] = []

    def report(event: Event) -> None:
        if isinstance(event, ScanPoint):
            row.append(f"{event.accuracy:6.2f}")
            if len(row) == len(sparsities):
                console.print(f"{event.layer:<32} " + " ".join(row))
                row.clear()

    console.print(f"{'sparsity':<32} " + " ".join(f"{s:6.2f}" for s in sparsities))
    result = session.scan(
        sparsities, names, report, nproc=nproc, rendezvous=rendezvous, options=options, use_cache=use_cache
    )
    console.print(f"Scan finished in {result.seconds:.1f} s ({_scan_details(result)})")
    return {
        "model": session.label,
        "sparsities": result.sparsities,
        "dense_accuracy": result.base_accuracy,
        "layers": result.layers,
        "seconds": result.seconds,
        "path": result.path,
        "cached": result.cached,
        "eval_images": result.images,
        "standard_error": result.standard_error(),
    }


def _scan_details(result: ScanResult) -> str:
    """Where the numbers came from and how precise they are: the standard error of the dense accuracy,
    and the largest any point can have (at 50%)."""
    source = "from the cache" if result.cached else f"{result.path} path"
    error = result.standard_error()
    if error is None:
        return source
    largest = standard_error(50.0, result.images)
    return f"{source}, {result.images} images, standard error ±{error:.2f} points, at most ±{largest:.2f}"


def _size_line(session: Session) -> str:
    size = session.current_size()
    return f"Sparse model has size={size:.2f} MiB = {session.percent(size):.2f}% of dense model size"


def prune(
    opened: Opened,
    epochs: int,
    lr: float,
    out: str | None,
    force: bool,
    as_json: bool,
    nproc: int = 1,
    rendezvous: "Rendezvous | None" = None,
    amp: str | None = None,
) -> dict:
    session, console = opened.session, _console(as_json)
    if epochs:
        _require_data(opened, "finetune")
    if out and not force and Path(out).exists():
        raise UserError(f"{out} exists (use --force to replace it)")  # checked before the long work
    has_data = session.data is not None
    accuracy_dense = session.evaluate() if has_data else None
    if has_data:
        console.print(f"Dense model has accuracy={accuracy_dense:.2f}%")
    console.print(f"Dense model has size={session.dense_size:.2f} MiB")
    session.prune()
    accuracy_before = session.evaluate() if has_data else None
    console.print(_size_line(session))
    if has_data:
        console.print(f"Sparse model has accuracy={accuracy_before:.2f}% before finetuning")
    epochs_log, accuracy_after = [], None
    if epochs:
        console.print("Finetuning Fine-grained Pruned Sparse Model")
        started = time.perf_counter()

        def report(event: Event) -> None:
            if isinstance(event, EpochEnd):
                console.print(f"    {event.line()}")

        settings = FinetuneSettings(epochs=epochs, lr=lr, amp=amp)
        result = session.finetune(settings, report, nproc=nproc, rendezvous=rendezvous)
        epochs_log = [
            {"epoch": e.epoch, "accuracy": e.accuracy, "best": e.best_accuracy} for e in result.epochs
        ]
        accuracy_after = result.best_accuracy
        console.print(_size_line(session))
        console.print(
            f"Sparse model has accuracy={accuracy_after:.2f}% after finetuning "
            f"({time.perf_counter() - started:.0f} s)"
        )
    profile_name = opened.profile.name if opened.profile else "custom"
    if out:
        written = export_checkpoint(session, out, profile_name, overwrite=force)
        console.print(
            f"Wrote {written.path}: {written.dense_bytes / 2**20:.2f} MiB on disk as saved, "
            f"{written.sparse_bytes / 2**20:.2f} MiB as bitmask + nonzero values; figures in {written.side_file}"
        )
    size = session.current_size()
    actual = session.pruned_sparsity()
    return {
        "model": session.label,
        "profile": profile_name,
        "dense_size_mib": session.dense_size,
        "sparse_size_mib": size,
        "percent_of_dense": session.percent(size),
        "accuracy_dense": accuracy_dense,
        "accuracy_before": accuracy_before,
        "accuracy_after": accuracy_after,
        "epochs": epochs_log,
        "layers": [
            {"name": n, "target": session.targets[n], "sparsity": actual[n]} for n in session.layer_names
        ],
    }


def _run_row(run: RunRecord) -> dict:
    return {
        "id": run.id, "name": run.name, "kind": run.kind, "status": run.status, "started": run.started,
        "parent": run.parent, "size_mib": run.sparse_size_mib, "percent_of_dense": run.percent_of_dense,
        "accuracy_dense": run.accuracy_dense, "accuracy_before": run.accuracy_before,
        "accuracy_after": run.accuracy_after, "epochs": len(run.epochs), "profile": run.profile,
    }  # fmt: skip


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def runs(opened: Opened, as_json: bool) -> dict:
    """The runs recorded in this working directory for this model, oldest first."""
    session = opened.session
    records = session.runs()
    for path in session.store.unreadable:
        print(f"warning: skipped unreadable run record {path}", file=sys.stderr)
    if not as_json:
        table = Table(title=f"runs of {session.label} in {Path.cwd()}", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("#", "Name", "Status", "MiB", "%dense", "Before", "After", "Change", "Ep"):
            table.add_column(
                column, justify="left" if column in ("Name", "Status") else "right", no_wrap=True
            )
        for number, run in enumerate(records, 1):
            change = run.accuracy_change
            table.add_row(
                str(number), run.name, run.status, f"{run.sparse_size_mib:.2f}", f"{run.percent_of_dense:.2f}",
                _accuracy(run.accuracy_before), _accuracy(run.accuracy_after),
                "" if change is None else f"{change:+.2f}", str(len(run.epochs) or ""),
            )  # fmt: skip
        _console(False).print(table if records else "No runs recorded here yet for this model.")
    return {"model": session.label, "runs": [_run_row(r) for r in records]}


def resume(
    opened: Opened, run_id: str, as_json: bool, nproc: int = 1, rendezvous: "Rendezvous | None" = None
) -> dict:
    """Go on with an interrupted finetune from its last completed epoch."""
    session, console = opened.session, _console(as_json)
    _require_data(opened, "resume")

    def report(event: Event) -> None:
        if isinstance(event, EpochEnd):
            console.print(f"    {event.line()}")

    result = session.resume(run_id, report, nproc=nproc, rendezvous=rendezvous)
    console.print(_size_line(session))
    console.print(f"Sparse model has accuracy={result.best_accuracy:.2f}% after finetuning")
    return _run_row(session.current_run)


@dataclass(frozen=True)
class Goal:
    """What `suggest` aims for: a size budget, or a tolerated predicted drop (overall or per layer)."""

    budget: str | None = None  # "25%" of dense, or MiB ("4.5" / "4.5MiB")
    max_drop: float | None = None
    per_layer: bool = False


def budget_mib(text: str, dense_mib: float) -> float:
    try:
        if text.strip().endswith("%"):
            value = float(text.strip()[:-1]) / 100 * dense_mib
        else:
            value = float(text.strip().removesuffix("MiB").removesuffix("mib"))
    except ValueError:
        raise UserError(f"bad --budget '{text}': expected a percent of dense (25%) or MiB (4.5)") from None
    if not 0 < value <= dense_mib:
        raise UserError(f"bad --budget '{text}': must be above 0 and at most the dense size")
    return value


def suggest(
    opened: Opened, goal: Goal, sparsities: list[float], lock: str | None, out: str | None, as_json: bool
) -> dict:
    """Scan, then propose targets for the goal; prune to them to measure the real accuracy too."""
    _require_data(opened, "suggest")
    session, console = opened.session, _console(as_json)
    locked_names = [n.strip() for n in lock.split(",") if n.strip()] if lock else []
    check_layer_names(locked_names, session.layer_names)
    if out and Path(out).exists():
        raise UserError(f"{out} exists (choose another name)")
    result = session.scan(sparsities, [n for n in session.layer_names if n not in locked_names])
    console.print(f"Scanned {len(result.layers)} layers in {result.seconds:.1f} s")
    table = allocate.ScanTable(
        result.sparsities, result.base_accuracy, result.layers, {i.name: i.params for i in session.layers()}
    )
    locked = {n: session.targets[n] for n in locked_names}
    if goal.budget is not None:
        proposal = allocate.suggest_for_budget(
            table, budget_mib(goal.budget, session.dense_size), session.projected_size, locked
        )
    elif goal.per_layer:
        proposal = allocate.suggest_per_layer_drop(table, goal.max_drop, session.projected_size, locked)
    else:
        proposal = allocate.suggest_for_max_drop(table, goal.max_drop, session.projected_size, locked)
    session.targets = dict(proposal.targets)
    session.prune(run_name="suggested")
    measured = session.evaluate()
    for name in session.layer_names:
        console.print(f"  {name}: {proposal.targets[name]:.2f}")
    console.print(
        f"Suggested profile: {proposal.size_mib:.2f} MiB = {session.percent(proposal.size_mib):.2f}% of dense; "
        f"accuracy before finetuning predicted {proposal.predicted_accuracy:.2f}% "
        f"(sum of per-layer scan drops), measured {measured:.2f}%"
    )
    if out:
        save_profile(session.profile(Path(out).stem, "suggested by prunetui from a sensitivity scan"), out)
        console.print(f"Wrote {out}")
    return {
        "model": session.label,
        "goal": {"budget": goal.budget, "max_drop": goal.max_drop, "per_layer": goal.per_layer},
        "sparsities": result.sparsities,
        "base_accuracy": result.base_accuracy,
        "predicted_accuracy": proposal.predicted_accuracy,
        "accuracy_before": measured,
        "sparse_size_mib": proposal.size_mib,
        "percent_of_dense": session.percent(proposal.size_mib),
        "targets": proposal.targets,
        "locked": locked_names,
    }
