"""Terminals as SSH gives them (issue 13, kind 7): without a real terminal the workbench says so in one
line and exits 2 at once, before torch is imported; a non-UTF-8 encoding or TERM=dumb is refused too."""

import os
import subprocess
import sys

import pytest

from prunetui.terminal import Terminal, is_utf8, workbench_problem

PROMPT = 30  # seconds: generous on a loaded machine; the refusal itself takes well under one


def run_prunetui(*args: str, env: dict | None = None, **streams) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prunetui", *args],
        capture_output="stdout" not in streams,
        text=True,
        timeout=PROMPT,
        env={**os.environ, **(env or {})},
        **streams,
    )


def test_piped_stdin_and_stdout_is_refused_in_one_line(tmp_path):
    done = run_prunetui(input="", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: the workbench needs a terminal")
    assert "prunetui info | scan | prune | suggest | runs | resume" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_nohup_shape_stdin_from_devnull_output_to_a_file(tmp_path):
    with open(tmp_path / "nohup.out", "w") as out:
        done = run_prunetui(
            "--model",
            "vgg-cifar",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    assert done.returncode == 2
    assert (tmp_path / "nohup.out").read_text().startswith("error: the workbench needs a terminal")


def test_headless_commands_still_run_without_a_terminal(tmp_path):
    done = run_prunetui("--help", input="", cwd=tmp_path)
    assert done.returncode == 0 and "usage: prunetui" in done.stdout


def test_the_refusal_comes_before_torch_is_imported():
    code = "import sys; from prunetui.cli import main; rc = main([]); print('torch' in sys.modules, rc)"
    done = subprocess.run(
        [sys.executable, "-c", code], input="", capture_output=True, text=True, timeout=PROMPT
    )
    assert done.stdout.strip() == "False 2"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "nosuch"], "error: unknown model spec 'nosuch'"),
        (["--model", "my models.py:"], "error: unknown model spec"),
        (["--profile", "/nonexistent/p.toml"], "error: profile not found: /nonexistent/p.toml"),
        (["--checkpoint", "/nonexistent/w.pt"], "error: checkpoint not found: /nonexistent/w.pt"),
    ],
)
def test_a_typo_is_refused_before_torch_and_before_the_workbench_draws(argv, expected):
    code = (
        f"import sys; from prunetui.cli import main; rc = main({argv!r}); print('torch' in sys.modules, rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input="", capture_output=True, text=True, timeout=PROMPT
    )
    assert done.stdout.strip() == "False 2" and done.stderr.startswith(expected), done.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TERM": "dumb"}, "error: the workbench needs a full terminal, not TERM=dumb"),
        ({"PYTHONIOENCODING": "latin-1"}, "error: the workbench draws with Unicode characters"),
        ({"PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C"}, "export LANG=C.UTF-8"),
    ],
    ids=["term-dumb", "latin-1", "ascii"],
)
def test_in_a_real_terminal_dumb_or_non_utf8_is_refused(tmp_path, env, expected):
    leader, follower = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "prunetui"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "TERM": "xterm-256color", **env},
            cwd=tmp_path,
            timeout=PROMPT,
        )
        os.close(follower)
        follower = -1
        shown = _read_all(leader)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert expected in shown
    assert shown.count("error:") == 1


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


TTY = {"stdin_tty": True, "stdout_tty": True, "stderr_tty": True}


@pytest.mark.parametrize(
    "terminal",
    [
        Terminal(**TTY, term="xterm-256color", encoding="utf-8"),
        Terminal(**TTY, term="screen", encoding="UTF-8"),
        Terminal(**TTY, term=None, encoding="utf8"),  # Windows has no TERM
    ],
)
def test_a_real_utf8_terminal_may_run_the_workbench(terminal):
    assert workbench_problem(terminal) is None


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({"stdin_tty": False}, "needs a terminal"),  # ssh host prunetui, nohup
        ({"stdout_tty": False}, "needs a terminal"),  # prunetui | tee log
        ({"stderr_tty": False}, "needs a terminal"),  # prunetui 2> log: Textual draws on stderr
        ({"term": "dumb"}, "not TERM=dumb"),
        ({"encoding": "ascii"}, "encoding is ascii: set a UTF-8 locale"),
        ({"encoding": "ANSI_X3.4-1968"}, "encoding is ANSI_X3.4-1968"),  # LANG=C without UTF-8 coercion
        ({"encoding": "ISO-8859-1"}, "encoding is ISO-8859-1"),
        ({"encoding": "cp1252"}, "encoding is cp1252"),
        ({"encoding": None}, "encoding is unknown"),
        ({"encoding": "no-such-codec"}, "encoding is no-such-codec"),
    ],
)
def test_what_the_workbench_refuses(broken, expected):
    facts = {**TTY, "term": "xterm", "encoding": "utf-8", **broken}
    problem = workbench_problem(Terminal(**facts))
    assert problem is not None and expected in problem
    assert "headless commands: prunetui info" in problem


@pytest.mark.parametrize(
    ("name", "utf8"), [("UTF-8", True), ("utf_8", True), ("U8", True), ("latin_1", False)]
)
def test_is_utf8_knows_the_spellings(name, utf8):
    assert is_utf8(name) is utf8
