"""gpu_check.sh's `speedup` section: the speed-up planner (`prunetui suggest --speedup`) on the device.

- resnet18 (10 classes, 3x32x32, random weights and images) planned for 1.5x at batch 256, and the lab VGG
  planned for 1.5x at batch 1 (launch-bound on a big GPU: the planner is expected to say so, or to return a
  profile that measures faster). Widths are multiples of 8 (the CUDA default).
- Each row: the measured speed-up and its spread (ABBA, CUDA events), whether the goal was reached, the
  rule that no returned profile measures below 1.0x, the latency model's error over the candidates and
  random profiles, and the planner's own time. Accuracy figures are meaningless on random images and are
  not reported.
"""

import tempfile
import time

from gpu_common import DEVICE, SMALL, row

PLANS = (("torchvision:resnet18:10", 256), ("vgg-cifar", 1))


def speedup() -> None:
    from prunetui.workflow.goals import parse_goal
    from prunetui.workflow.opening import Request, open_session
    from prunetui.workflow.planning import Effort, SpeedupRequest, plan_speedup

    effort = Effort(table_run_time=0.02, sweeps=1, measure_run_time=0.05, measure_rounds=2, check_profiles=3)
    if SMALL:
        effort = Effort(fractions=(0.5,), table_run_time=0.001, sweeps=1, measure_run_time=0.001,
                        measure_rounds=1, rounds=2, keep=1, check_profiles=1)  # fmt: skip
    for spec, batch in PLANS:
        batch = 8 if SMALL and batch > 1 else batch
        images = 64 if SMALL else 512
        request = Request(
            model=spec, data=f"random:{images}:3x32x32", device=str(DEVICE), state_dir=tempfile.mkdtemp()
        )
        session = open_session(request).session
        goal = SpeedupRequest(parse_goal("1.5x", 1.0), (batch,))
        started = time.perf_counter()
        planned = plan_speedup(
            session, goal, lambda text, style="": print(f"  {text}", flush=True), effort=effort
        )
        seconds = time.perf_counter() - started
        error = ", ".join(f"{e:.1%}" for e in planned.model_error.values()) or "n/a"
        if planned.best is None:
            result = f"no profile returned: {planned.search.goal:g}x {'reached' if planned.search.reached else 'not reached'}"
            floor = "never slower: nothing returned"
        else:
            measured = planned.speedup[batch]
            result = f"**{measured.ratio:.2f}x** ({measured.low:.2f}-{measured.high:.2f}), goal {'reached' if planned.search.reached else 'NOT reached'}"
            floor = "never slower: OK" if measured.ratio >= 1.0 else "SLOWER THAN DENSE"
        reason = planned_reason(planned) or ""
        row(
            "j speedup",
            f"plan 1.5x for {spec} at batch {batch} (widths x{planned.table.setting.round_to})",
            result,
            f"{floor}; latency model error {error} over {planned.model_checks} whole measurements; "
            f"planned in {seconds:.0f} s (latency model {planned.table.seconds:.0f} s)"
            + (f"; {reason[:200]}" if reason else ""),
        )


def planned_reason(planned) -> str | None:
    from prunetui.workflow.planning_lines import reason

    return reason(planned)
