"""Can the workbench (the TUI) run here? Decided before torch is imported, from plain facts.

The TUI reads keys from stdin and Textual draws on stderr; stdout must be a terminal too, or the screen
would be written into a pipe or a file. It is refused, with one line naming the headless commands, when:
- stdin, stdout or stderr is not a terminal (`ssh host prunetui` without -t, nohup, a pipe, a redirect);
- TERM is `dumb` (no cursor movement: Emacs shells, some CI consoles);
- the terminal's encoding is not UTF-8 (LANG=C on old systems, an ISO-8859-1 locale): the panes, plots
  and progress bar are drawn with Unicode box and block characters, which would show as escapes.
"""

import codecs
import os
import sys
from dataclasses import dataclass

HEADLESS = "prunetui info | scan | prune | suggest | runs | resume (each with --json)"


@dataclass(frozen=True)
class Terminal:
    """What the decision needs, read from the process or given by a test."""

    stdin_tty: bool
    stdout_tty: bool
    stderr_tty: bool
    term: str | None
    encoding: str | None


def current_terminal() -> Terminal:
    """The facts for this process (the encoding Textual will write with: stderr's)."""
    return Terminal(
        stdin_tty=_isatty(sys.stdin),
        stdout_tty=_isatty(sys.stdout),
        stderr_tty=_isatty(sys.stderr),
        term=os.environ.get("TERM"),
        encoding=getattr(sys.stderr, "encoding", None),
    )


def workbench_problem(terminal: Terminal) -> str | None:
    """None when the TUI can run; otherwise the one-line reason, with what to do instead."""
    if not (terminal.stdin_tty and terminal.stdout_tty and terminal.stderr_tty):
        return (
            "the workbench needs a terminal (stdin, stdout and stderr must be a TTY: use ssh -t, no pipe or "
            f"nohup); headless commands: {HEADLESS}"
        )
    if terminal.term == "dumb":
        return f"the workbench needs a full terminal, not TERM=dumb; headless commands: {HEADLESS}"
    if not is_utf8(terminal.encoding):
        return (
            f"the workbench draws with Unicode characters but this terminal's encoding is "
            f"{terminal.encoding or 'unknown'}: set a UTF-8 locale (export LANG=C.UTF-8), or "
            f"PYTHONIOENCODING=utf-8 if the terminal shows UTF-8; headless commands: {HEADLESS}"
        )
    return None


def is_utf8(encoding: str | None) -> bool:
    """True for any spelling of UTF-8 (utf8, UTF-8, utf_8); False for ascii, latin-1, unknown names."""
    if not encoding:
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
