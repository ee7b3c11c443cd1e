"""The one exception type for mistakes a user can fix: front ends show its message, never a traceback."""


class UserError(Exception):
    """Bad input (a spec, a file, a value): the message is shown to the user as is."""


class JobFailed(Exception):
    """A job's separate processes failed (a rank died or raised): the message says which and why."""
