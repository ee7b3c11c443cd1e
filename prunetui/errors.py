"""The one exception type for mistakes a user can fix: front ends show its message, never a traceback."""


class UserError(Exception):
    """Bad input (a spec, a file, a value): the message is shown to the user as is."""
