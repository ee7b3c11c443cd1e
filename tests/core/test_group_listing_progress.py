"""Listing channel groups reports its progress through the core's report callback and stops when its
cancel event is set, between groups, leaving nothing half-listed behind (core.channel.progress)."""

import threading

import pytest
import torch
from conftest import tiny_cnn

from prunetui.core.channel import channel_groups, prune_channels
from prunetui.core.events import Cancelled, Progress
from prunetui.core.session import Session
from prunetui.workflow.channel_steps import list_units

X = torch.zeros(1, 1, 8, 8)


def test_progress_counts_every_step_up_to_its_total():
    events: list[Progress] = []
    groups = channel_groups(tiny_cnn().eval(), X, events.append)
    assert [g.name for g in groups if g.prunable] == ["0.weight", "3.weight"]
    assert {e.stage for e in events} == {"channel groups"}
    assert [e.done for e in events] == list(range(1, len(events) + 1))
    assert all(e.done <= e.total for e in events) and events[-1].done == events[-1].total
    # traced, 3 layers followed, 2 prunable groups rebuilt, 1 forward check of both
    assert [e.detail for e in events] == [
        "traced",
        *[e.detail for e in events[1:4]],
        "rebuilding 0",
        "rebuilding 3",
        "forward check of 2 pruned groups",
    ]
    assert sorted(e.detail for e in events[1:4]) == ["following 0", "following 3", "following 7"]


def test_a_cancelled_listing_stops_between_groups_and_caches_nothing():
    model, cancel, seen = tiny_cnn().eval(), threading.Event(), []

    def report(event: Progress) -> None:
        seen.append(event.detail)
        if len(seen) == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        channel_groups(model, X, report, cancel)
    assert len(seen) == 2  # the third step saw the event and stopped
    assert sum(g.prunable for g in channel_groups(model, X)) == 2  # listed whole the next time


def test_a_cancelled_method_switch_keeps_the_method(tmp_path):
    session = Session(tiny_cnn())
    session.state.example = X
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled), session.transaction():
        session.set_method("channel")
        list_units(session, lambda text, style="": None, cancel=cancel)
    assert session.method.name == "magnitude"
    lines = []
    session.set_method("channel")
    list_units(session, lambda text, style="": lines.append(text))
    assert lines == ["2 of 3 groups can be pruned (channel)"]


def test_a_cancelled_channel_prune_leaves_the_model_whole():
    model, cancel = tiny_cnn().eval(), threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        prune_channels(model, X, {"0.weight": 0.5}, cancel)
    assert model[0].out_channels == 8
    assert prune_channels(model, X, {"0.weight": 0.5}).model[0].out_channels == 4
