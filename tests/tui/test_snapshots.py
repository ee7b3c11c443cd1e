"""What the screens look like (pytest-textual-snapshot). Update: pytest tests/tui --snapshot-update."""

import pytest

from .conftest import make_app, make_session, wait_idle
from .many_layers import many_session


@pytest.fixture
def fresh_app(trained_state, tmp_path):
    return make_app(make_session(trained_state), tmp_path)


async def targets_set(pilot) -> None:
    await wait_idle(pilot)
    await pilot.press("j", "8", "j", "6")


def test_main_screen_80x24(fresh_app, snap_compare):
    assert snap_compare(fresh_app, terminal_size=(80, 24), run_before=targets_set)


def test_main_screen_120x40(fresh_app, snap_compare):
    assert snap_compare(fresh_app, terminal_size=(120, 40), run_before=targets_set)


def test_help_screen(fresh_app, snap_compare):
    async def help_shown(pilot) -> None:
        await wait_idle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(fresh_app, terminal_size=(100, 40), run_before=help_shown)


@pytest.fixture
def many_layers_app(tmp_path):
    return make_app(many_session(), tmp_path)


async def many_selected(pilot) -> None:
    """Two layers selected and set together (the Params plot's tick labels move by a cell from one run to
    the next: plotext places them, so the Weights plot is shown)."""
    await wait_idle(pilot)
    await pilot.press("j", "space", "space", "5")


def test_many_layers_80x24(many_layers_app, snap_compare):
    assert snap_compare(many_layers_app, terminal_size=(80, 24), run_before=many_selected)


def test_many_layers_120x40(many_layers_app, snap_compare):
    assert snap_compare(many_layers_app, terminal_size=(120, 40), run_before=many_selected)


def test_many_layers_160x40(many_layers_app, snap_compare):
    assert snap_compare(many_layers_app, terminal_size=(160, 40), run_before=many_selected)
