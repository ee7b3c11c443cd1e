"""A latency ratio is called a speed-up only outside the noise its ABBA halves show (core.speedup), and
a model that runs the dense kernels gets no ratio at all. The timer is injected: the halves are known."""

from conftest import prune_to

from prunetui.core.cost import Latency
from prunetui.core.speedup import SAME_KERNELS, speedup
from prunetui.workflow.channel_steps import cost_line
from prunetui.workflow.opening import Request, open_session


def timer(*ms: float):
    """A measure_latency stand-in giving `ms` in the ABBA order: dense, pruned, pruned, dense."""
    values = iter(ms)

    def measure(model, example_input, batch=1, threads=None, min_run_time=1.0) -> Latency:
        return Latency(next(values), batch, 1, "cpu", 10)

    return measure


def test_the_interval_of_a_ratio_comes_from_the_halves():
    inside = speedup(dense_ms=1.0, pruned_ms=1.0, dense_spread=0.1, pruned_spread=0.1)
    assert inside.within_noise and inside.text() == "~1.0x (within noise: 0.90-1.11x)"
    outside = speedup(dense_ms=2.0, pruned_ms=1.0, dense_spread=0.1, pruned_spread=0.1)
    assert not outside.within_noise and outside.text() == "2.00x speed-up (1.86-2.16x)"
    slower = speedup(dense_ms=1.0, pruned_ms=2.0, dense_spread=0.02, pruned_spread=0.02)
    assert slower.text() == "0.50x slow-down (0.49-0.51x)"


def channel_session(tmp_path, *ms):
    session = open_session(Request(method="channel"), tmp_path).session  # the demo CNN
    session.cost.timer = timer(*ms)
    prune_to(session, {"backbone.conv1.weight": 0.5})
    return session


def test_a_noisy_pair_prints_no_speed_up(tmp_path):
    # dense halves 1.0 and 1.4 ms (load changed while timing), pruned 0.9 and 1.0: ratio 1.26x, but
    # anywhere from 1.00x to 1.56x
    session = channel_session(tmp_path, 1.0, 0.9, 1.0, 1.4)
    cost = session.measure_run_cost()
    assert abs(cost["latency_spread_ms_dense"] - 0.4) < 1e-9 and abs(cost["latency_spread_ms"] - 0.1) < 1e-9
    assert cost["latency_within_noise"] is True
    assert [round(x, 3) for x in cost["latency_speedup_range"]] == [1.0, 1.556]
    assert "~1.0x (within noise: 1.00-1.56x)" in cost_line(cost)
    assert "speed-up" not in cost_line(cost)


def test_a_clear_pair_prints_its_speed_up_and_interval(tmp_path):
    session = channel_session(tmp_path, 2.0, 1.0, 1.05, 2.1)
    cost = session.measure_run_cost()
    assert cost["latency_within_noise"] is False and cost["latency_speedup"] == 2.05 / 1.025
    assert "2.00x speed-up (1.90-2.10x)" in cost_line(cost)


def test_fine_grained_runs_say_the_kernels_are_the_dense_ones(tmp_path):
    session = open_session(Request(), tmp_path).session  # magnitude on the demo CNN
    session.cost.timer = timer(1.0, 0.5, 0.5, 1.0)  # a 2x "speed-up" that cannot be real
    prune_to(session, {"backbone.conv1.weight": 0.9})
    cost = session.measure_run_cost()
    assert cost["latency_ms"] == 0.5 and cost["latency_within_noise"] is True  # numbers kept
    assert SAME_KERNELS in cost_line(cost) and "2.00x" not in cost_line(cost)


def test_table_cells_are_short():
    assert speedup(2.0, 1.0, 0.1, 0.1).short() == "2.00x"
    assert speedup(1.0, 1.0, 0.1, 0.1).short() == "~1.0x"
    assert speedup(1.0, 0.5, 0.0, 0.0, same_kernels=True).short() == "~1.0x"
    assert speedup(1.0, 0.5).text() == "2.00x"  # a record from before spreads were kept
