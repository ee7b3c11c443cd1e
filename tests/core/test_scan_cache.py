"""Scans cached in .prunetui/scans: served at once the second time, recomputed when anything changes."""

import threading

import pytest
import torch

from prunetui.core import sensitivity as session_module
from prunetui.core.events import Progress, ScanPoint
from prunetui.core.scan_cache import ScanCache, cached_scan, scan_folder, scan_key
from prunetui.core.sensitivity import ScanOptions, scan, scan_runner
from prunetui.core.session import Origin, Session

GRID = [0.5, 0.9]


@pytest.fixture
def session(model, splits, tmp_path) -> Session:
    opened = Session(model, splits, "tiny", Origin(data_spec="tiny"))
    opened.scans.folder = scan_folder(tmp_path)
    return opened


@pytest.fixture
def scanned_layers(monkeypatch) -> list[list[str]]:
    """The layers each real scan was asked for (the cache answers the rest)."""
    calls = []

    def recording_scan(model, batches, sparsities, layers, *args, **kwargs):
        calls.append(None if layers is None else list(layers))
        return scan(model, batches, sparsities, layers, *args, **kwargs)

    monkeypatch.setattr(session_module, "scan", recording_scan)
    return calls


def test_second_scan_is_served_from_the_cache(session, scanned_layers):
    first = session.scan(GRID)
    points = []
    second = session.scan(GRID, report=points.append)
    assert not first.cached and second.cached
    assert second.layers == first.layers and second.base_accuracy == first.base_accuracy
    assert second.images == first.images == 96 and second.path == first.path
    assert scanned_layers == [session.layer_names]  # the second scan computed nothing
    assert [(p.layer, p.accuracy) for p in points if isinstance(p, ScanPoint)] == [
        (name, a) for name, row in first.layers.items() for a in row
    ]
    assert points[-1] == Progress("scan", 3, 3)


def test_changed_weights_or_settings_miss(session, scanned_layers):
    session.scan(GRID)
    with torch.no_grad():
        session.model[0].weight[0, 0, 0, 0] += 1e-3
    assert not session.scan(GRID).cached
    assert not session.scan([0.5]).cached
    assert not session.scan(GRID, options=ScanOptions(eval_size=50)).cached
    assert not session.scan(GRID, use_cache=False).cached
    assert len(scanned_layers) == 5  # the first scan and the four misses


def test_only_missing_layers_are_scanned(session, scanned_layers):
    session.scan(GRID, ["3.weight"])
    both = session.scan(GRID, ["7.weight", "3.weight"])
    assert scanned_layers == [["3.weight"], ["7.weight"]]
    assert list(both.layers) == ["7.weight", "3.weight"] and not both.cached


def test_cancelled_scan_keeps_its_finished_layers(session, scanned_layers):
    cancel = threading.Event()

    def report(event):
        if isinstance(event, ScanPoint) and event.layer == "3.weight":
            cancel.set()

    assert list(session.scan(GRID, report=report, cancel=cancel).layers) == ["0.weight"]
    resumed = session.scan(GRID)
    assert scanned_layers == [session.layer_names, ["3.weight", "7.weight"]]
    assert list(resumed.layers) == session.layer_names


def test_unreadable_cache_file_is_recomputed(model, splits, tmp_path):
    cache = ScanCache(tmp_path, scan_key(model, "tiny", GRID, None, None))
    tmp_path.mkdir(exist_ok=True)
    cache.file.write_text("{not json")
    result = cached_scan(
        cache, model, splits.eval, GRID, None, lambda e: None, None, None, scan_runner(ScanOptions())
    )
    assert not result.cached and list(result.layers) == ["0.weight", "3.weight", "7.weight"]
    again = cached_scan(
        cache, model, splits.eval, GRID, None, lambda e: None, None, None, scan_runner(ScanOptions())
    )
    assert again.cached and again.layers == result.layers


def test_no_cache_without_a_data_spec(model, splits, tmp_path):
    anonymous = Session(model, splits, "tiny")
    anonymous.scans.folder = scan_folder(tmp_path)
    anonymous.scan(GRID, ["3.weight"])
    assert not (tmp_path / ".prunetui").exists()


def test_eval_subset_keeps_the_session_accuracy(session):
    dense = session.evaluate()
    subset = session.scan(GRID, ["3.weight"], options=ScanOptions(eval_size=10))
    assert subset.images == 10 and session.accuracy == dense


def test_stored_scan_of_the_model_as_it_is_now(session):
    assert session.stored_scan(GRID) is None
    result = session.scan(GRID)
    stored = session.stored_scan(GRID)
    assert stored.cached and stored.layers == result.layers and stored.base_accuracy == result.base_accuracy
    with torch.no_grad():
        session.model[0].weight.mul_(2)
    assert session.stored_scan(GRID) is None
