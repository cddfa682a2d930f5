"""The one exception type a user can cause.

Every mistake a user can make (a missing file, a bad option, a label out of range) raises
``GankitError`` with one sentence that names the input and says how to fix it. The CLI prints
that sentence and exits with status 2; anything else is a bug and keeps its traceback.
"""


class GankitError(Exception):
    """A problem with the user's input, explained in one sentence."""
