"""The one exception type that carries a message meant for the person running psyllm.

Components raise `PsyllmError` for anything a user can fix (a missing file, a malformed
record, a bad parameter). The CLI prints its message and exits non-zero, without a trace.
"""


class PsyllmError(Exception):
    """A problem the user can act on; `str(error)` is the whole message they see."""
