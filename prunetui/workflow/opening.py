"""Open a session from what the user named: model spec, checkpoint, data spec, device, profile, method.

Both front ends open the same way (the TUI is started by the CLI with the session this returns).
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prunetui.core.device import resolve_device
from prunetui.core.events import Report, ignore
from prunetui.core.model_state import ModelState
from prunetui.core.profile import Profile, load_profile
from prunetui.core.recipe import METHODS
from prunetui.core.runs import RunStore, state_folder
from prunetui.core.scan_cache import scan_folder
from prunetui.core.session import Origin, Session
from prunetui.core.threads import apply_thread_policy
from prunetui.errors import UserError
from prunetui.sources import load_data, open_model
from prunetui.sources.fit import check_model_fits_data, input_channels
from prunetui.workflow.channel_steps import spec_example
from prunetui.workflow.policy import profile_model_warning


@dataclass(frozen=True)
class Request:
    """What to open, as typed (None: the default)."""

    model: str | None = None
    checkpoint: str | None = None
    checkpoint_key: str | None = None
    data: str | None = None
    device: str | None = None
    profile: str | None = None
    method: str | None = None  # overrides the profile's method
    regrow: bool = False  # let finetuning regrow the zeros present at load
    state_dir: str | None = None  # run records and caches (core.runs.state_folder; default .prunetui/)
    threads: int | None = None  # torch's CPU threads (core.threads: else $PRUNETUI_THREADS, else torch's)


def start_sparsity_notes(session: Session) -> list[str]:
    """A line when the model is already sparse: its zeros are the starting state and stay pruned."""
    start = {name: s for name, s in session.state.start_sparsity().items() if s > 0}
    if not start:
        return []
    shown = ", ".join(f"{name} {s:.0%}" for name, s in list(start.items())[:3])
    more = f" and {len(start) - 3} more" if len(start) > 3 else ""
    held = (
        "they stay pruned through prune and finetune"
        if not session.state.regrow
        else "--regrow: they may grow back"
    )
    return [f"already sparse at load: {shown}{more}; {held}"]


@dataclass
class Opened:
    session: Session
    profile: Profile | None
    model_spec: str
    data_spec: str | None
    notes: list[str]  # what the user should know (random weights, which checkpoint entry, warnings)


def open_session(request: Request, workdir: Path | None = None, report: Report = ignore) -> Opened:
    """Validated: a bad spec, file, profile or method raises UserError before any long work.

    Runs and scans are kept in `request.state_dir`, else $PRUNETUI_STATE_DIR, else `workdir`/.prunetui
    (`workdir` default: the current directory). A structured method's units (channel groups: seconds to
    minutes on attention models) are listed here, their progress going to `report`."""
    workdir = workdir or Path.cwd()
    notes: list[str] = []
    apply_thread_policy(request.threads)  # the same for both front ends: both open here
    model_spec = request.model or "demo"
    device = resolve_device(request.device or "auto")  # the GPU box by default
    profile = load_profile(request.profile) if request.profile else None
    loaded = open_model(model_spec, request.checkpoint, request.checkpoint_key)
    notes += loaded.notes
    data_spec = request.data or ("digits" if model_spec == "demo" else None)
    data = load_data(data_spec, channels=input_channels(loaded.model)) if data_spec else None
    notes += data.notes if data is not None else []
    model = loaded.model.to(device)
    if data is not None:
        notes += [f"warning: {w}" for w in check_model_fits_data(model, data, device, label=loaded.label)]
    fingerprint = data.fingerprint if data is not None else None
    origin = Origin(data_spec=data_spec, checkpoint=request.checkpoint, data_fingerprint=fingerprint)
    folder = state_folder(request.state_dir, workdir)
    state = model_state(model, loaded.checkpoint, model_spec, data)
    launch = partial(launcher_for, model_spec, data_spec)
    session = Session(
        model, data, loaded.label, origin, RunStore(state_dir=folder), launch=launch, state=state
    )
    session.scans.folder = scan_folder(state_dir=folder)
    session.set_regrow(request.regrow)
    list_structured_units(session, request.method or (profile.method if profile else None), report)
    if request.method is not None and profile is not None and profile.method != request.method:
        notes.append(
            f"warning: profile '{profile.name}' is a {profile.method} profile; --method {request.method} wins"
        )
    if profile is not None:
        resolved = session.apply_profile(profile, request.method)
        notes += [f"profile '{profile.name}': {m.line(session.method.noun)}" for m in resolved.patterns]
        warning = profile_model_warning(profile.name, profile.model, loaded.label)
        notes += [f"warning: {warning}"] if warning else []
    else:
        notes += export_targets(session, loaded.checkpoint, request.method)
    notes += start_sparsity_notes(session)
    return Opened(session, profile, model_spec, data_spec, notes)


def export_targets(session: Session, checkpoint, method: str | None) -> list[str]:
    """A fine-grained export reopens with the targets its weights were pruned to (its record's), by its
    method (or `method`); a channel export's ratios are already spent (the model opened is the smaller
    one), so its targets start at 0."""
    record = checkpoint.record if checkpoint is not None else {}
    sparsity = record.get("sparsity") or {}
    if sparsity and not checkpoint.stages and set(sparsity) <= set(session.layer_names):
        profile = Profile(record.get("profile", "export"), dict(sparsity), record.get("model"), None,
                          record.get("method", "magnitude"))  # fmt: skip
        session.apply_profile(profile, method)
        return [f"targets of the export ({profile.name}, {profile.method}) as its weights were pruned"]
    if method is not None:
        session.set_method(method)
    return []


def list_structured_units(session: Session, method: str | None, report: Report) -> None:
    """The groups of a structured method, listed once with their progress (they are memoized: the
    profile's check and the prune then use them)."""
    if method in METHODS and METHODS[method].structured:
        session.set_method(method)
        session.units(report)


def model_state(model, checkpoint, spec: str, data) -> ModelState:
    """The model as opened: with the channel stages and the dense size a channel export carries, and an
    example input from the data (else the shape the spec implies)."""
    stages = checkpoint.stages if checkpoint is not None else ()
    record = checkpoint.record if checkpoint is not None else {}
    dense = record.get("dense_size_mib") if stages else None
    example = spec_example(spec) if data is None else None  # else the first image, when needed
    return ModelState(model, example, opened_stages=stages, dense_size=dense)


def launcher_for(model_spec: str, data_spec: str | None, processes, state: ModelState):
    """torchrun's launcher for several processes (each rebuilds the model and data from their specs,
    then the channel stages, then the weights the parent sends), else None: this process."""
    if not processes.distributed:
        return None
    if data_spec is None:
        raise UserError(
            "distributed jobs need a model spec and a data spec: each process rebuilds the model and "
            "the data from them (open the model with --model and --data)"
        )
    from prunetui.distributed.launch import Launcher  # torch.distributed only when asked for

    return Launcher(model_spec, data_spec, processes, state)
