"""The lab's one error type, in a module of its own so that every lab module can raise it
without importing another's machinery (``vditui.lab.daemon`` re-exports it, as before)."""


class LabError(RuntimeError):
    """The lab cannot start or run: says what failed and how to fix it."""
