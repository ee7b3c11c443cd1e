"""The one exception type for mistakes a user can fix: front ends show its message, never a traceback."""


class UserError(Exception):
    """Bad input (a spec, a file, a value): the message is shown to the user as is."""


class JobFailed(Exception):
    """A job's separate processes failed (a rank died or raised): the message says which and why."""


def write_crash_log(error: BaseException) -> str:
    """Write `error`'s full traceback to a new `prunetui-crash-*.log` in the temp folder; returns the one
    line a front end prints instead of the traceback."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="prunetui-crash-", suffix=".log", delete=False) as f:
        traceback.print_exception(error, file=f)
    return f"error: internal error ({type(error).__name__}: {error}); full traceback in {f.name}"
