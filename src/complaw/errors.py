"""User-facing errors.

Anything the *user* got wrong (a missing column, a ratio out of range, an unknown method) raises
:class:`ComplawError` with one line that names the input, says what is wrong and what would be right.
The CLI prints that line and exits with code 2, without a traceback. Internal bugs raise ordinary
exceptions and keep their tracebacks.

    >>> raise ComplawError("--ratio 1.2: must lie in [0, 1), e.g. 0.3")
"""

from __future__ import annotations


class ComplawError(ValueError):
    """A bad input, explained in one line for the user (exit code 2 on the CLI)."""

    exit_code = 2


def require(condition: bool, message: str) -> None:
    """Raise :class:`ComplawError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ComplawError(message)
