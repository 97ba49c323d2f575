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


class CacheUnusable(ComplawError):
    """complaw's cache (``$COMPLAW_CACHE``) cannot hold what a command needs there: a setting of the machine, not
    of the command, so it is reported as it is wherever it is found (never as a bad option)."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`ComplawError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ComplawError(message)


def from_validation(err, where: str, names: dict[str, str] | None = None) -> ComplawError:
    """The first problem of a pydantic ``ValidationError`` as one line naming the field and the value.

    ``names`` maps a field's dotted location to what the user typed for it (e.g. ``samples`` →
    ``--rft-samples``)."""
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first.get("loc", ())) or "value"
    loc = (names or {}).get(loc, loc)
    value = first.get("input")
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "…"  # a huge value stays one readable line
    got = f" (got {shown})" if value is not None and not isinstance(value, (dict, list)) else ""
    return ComplawError(f"{where}: {loc}: {first['msg']}{got}")
