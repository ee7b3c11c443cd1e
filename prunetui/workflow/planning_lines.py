"""The planner's lines (workflow.planning), the same in the CLI and the TUI's log."""

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prunetui.core.latency_model import LatencyTable, Setting
from prunetui.core.timers import Speedup

if TYPE_CHECKING:
    from prunetui.core.holdout import EvalSplit
    from prunetui.core.sensitivity import ScanResult
    from prunetui.workflow.planning import Planned

LAUNCH_BOUND = 1.1  # the narrowest widths measuring under this speed-up: the time is not in the channels


def timing(setting: Setting, groups: int) -> str:
    return (
        f"Latency model: {groups} channel groups x {len(setting.fractions)} widths each, {setting.describe()}"
    )


def table_done(table: LatencyTable) -> str:
    dense = ", ".join(f"{ms:.2f} ms at batch {b}" for b, ms in table.dense_ms.items())
    if table.cached:
        return f"Latency model from the cache (measured in {table.seconds:.0f} s); dense {dense}"
    return f"Latency model measured in {table.seconds:.0f} s; dense {dense}"


def scan_done(scan: "ScanResult", split: "EvalSplit") -> str:
    how = "from the cache" if scan.cached else f"in {scan.seconds:.0f} s"
    return (
        f"Channel scan after BN recalibration on {split.search_images} search images ({how}); "
        f"{split.held_out_images} images held out for the report; dense {scan.base_accuracy:.2f}% recalibrated"
    )


def speedups_text(measured: Mapping[int, Speedup]) -> str:
    return ", ".join(f"{s.ratio:.2f}x ({s.low:.2f}-{s.high:.2f}) at batch {b}" for b, s in measured.items())


def candidate(
    widths, table: LatencyTable, predicted: Mapping[int, float], measured: Mapping[int, Speedup]
) -> str:
    narrowed = sum(1 for name, w in widths.items() if w < table.groups[name].channels)
    guess = ", ".join(f"{p:.2f}x" for p in predicted.values())
    return f"Candidate ({narrowed} groups narrowed): predicted {guess}, measured {speedups_text(measured)}"


def reason(planned: "Planned") -> str | None:
    """Why the goal was not reached (None when it was): what the narrowest widths measure, and when they
    gain almost nothing, that the time is not in the channels' arithmetic (a launch-bound model)."""
    found = planned.search
    if found.reached:
        return None
    goal = f"{found.goal:g}x"
    narrow = found.narrowest
    if narrow is None:
        return f"{goal} not reached: no group can be narrowed within the scanned widths"
    batch, worst = min(narrow.measured.items(), key=lambda item: item[1].ratio)
    floor = (
        f"every group at its narrowest width ({_narrowest_share(planned):.0%} of its channels or fewer) "
        f"measures {worst.ratio:.2f}x ({worst.low:.2f}-{worst.high:.2f}) at batch {batch}"
    )
    if worst.ratio < LAUNCH_BOUND:
        device = planned.table.setting.device
        return (
            f"no speed-up to plan at batch {batch}: {floor}. The time there is not in the channels' "
            f"arithmetic: a small model at a small batch on {device} is launch-bound (kernel launches and "
            "framework overhead per layer), so narrower layers do not make it faster; plan for a larger "
            "batch, or measure the runtime you deploy with (--runtime onnxruntime)"
        )
    best = found.best
    fastest = f"; returned the fastest candidate, {best.least_speedup:.2f}x" if best is not None else ""
    return f"{goal} not reached: {floor}{fastest}"


def _narrowest_share(planned: "Planned") -> float:
    table = planned.table
    return max(g.widths[-1] / g.channels for g in table.groups.values())


def max_drop_met(planned: "Planned") -> bool | None:
    """The held-out drop within --max-drop (None: no --max-drop, or nothing returned)."""
    limit, drop = planned.request.max_drop, planned.drop_heldout
    return None if limit is None or drop is None or planned.best is None else drop <= limit


def outcome(planned: "Planned") -> list[tuple[str, str]]:
    """The closing lines: the measured speed-up, both accuracies with their standard errors, what was
    not met, and the latency model's error."""
    best = planned.best
    said = []
    why = reason(planned)
    if best is None:
        return [(why or "no profile measured faster than dense", "yellow"), _model_error(planned)]
    said.append((f"Planned for {planned.request.goal.text}: measured {speedups_text(best.measured)}", "bold"))
    search_error, held_error = planned.standard_errors()
    said.append((
        f"Accuracy after BN recalibration: {best.accuracy:.2f}% ± {search_error:.2f} on "
        f"{planned.split.search_images} search images (dense {planned.accuracy_dense_search:.2f}%), "
        f"{planned.accuracy_heldout:.2f}% ± {held_error:.2f} on {planned.split.held_out_images} held-out images "
        f"never used in the search (dense {planned.accuracy_dense_heldout:.2f}%)",
        "",
    ))  # fmt: skip
    if why is not None:
        said.append((why, "yellow"))
    ranked = [c for c in planned.search.candidates if c.accuracy is not None]
    if len(ranked) > 1:  # what the choice was between
        said.append(("Ranked by accuracy after BN recalibration (search images): " + ", ".join(
            f"{c.source} {c.least_speedup:.2f}x {c.accuracy:.2f}%" for c in ranked), "dim"))  # fmt: skip
    if max_drop_met(planned) is False:
        said.append((
            f"The held-out drop, {planned.drop_heldout:.2f} points, is more than --max-drop "
            f"{planned.request.max_drop:g}: finetuning (prune --finetune N) recovers most of it, or ask for less",
            "yellow",
        ))  # fmt: skip
    said.append(_model_error(planned))
    return said


def _model_error(planned: "Planned") -> tuple[str, str]:
    if not planned.model_error:
        return "Latency model not checked (no whole measurement)", "dim"
    errors = ", ".join(f"{e:.1%} at batch {b}" for b, e in planned.model_error.items())
    return (
        f"Latency model error: {errors} (mean |predicted - measured| / measured over "
        f"{planned.model_checks} whole measurements, before correction)",
        "dim",
    )
