"""The CLI's progress bar: on stderr, only when stderr is a terminal; --json keeps stdout one document."""

import io
import json
import sys

import pytest
from rich.console import Console

from prunetui import cli_progress
from prunetui.cli import main
from prunetui.core.events import Progress

LAYER = ["--layers", "backbone.conv2.weight", "--sparsities", "0.5,0.9", "--no-cache"]
BAR_MARKS = ("━", "estimating...", " left", "base accuracy")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_no_bar_when_stderr_is_not_a_terminal_and_json_stays_pure(capsys):
    assert main(["scan", *LAYER, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["layers"]  # one JSON document, nothing else
    assert "Scan finished in" in err
    assert not any(mark in err for mark in BAR_MARKS)
    assert "\x1b" not in err


def test_the_bar_is_on_a_terminal_stderr_and_json_stays_pure(capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["scan", *LAYER, "--json"]) == 0
    out = capsys.readouterr().out
    assert set(json.loads(out)) >= {"layers", "dense_accuracy"}  # pure JSON while the bar ran
    shown = terminal.getvalue()
    assert "Scan finished in" in shown
    assert "━" in shown and "scan " in shown  # the bar was drawn (the finished one at least)


def test_the_bar_shows_detail_percent_and_time_left(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    clock = iter([0.0, 10.0, 20.0])
    monkeypatch.setattr(cli_progress.time, "monotonic", lambda: next(clock))
    with cli_progress.progress_bar(Console(stderr=True, width=100)) as (_console, report):
        report(Progress("scan", 0, 540, "base accuracy"))
        report(Progress("scan", 108, 540, "backbone.conv3.weight at 0.70"))
        report.bar.refresh()
        shown = terminal.getvalue()
    assert "scan backbone.conv3.weight at 0.70" in shown
    assert "20%" in shown and "40 s left" in shown
