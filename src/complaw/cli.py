"""The ``complaw`` command line.

Every subcommand is a plain typed function that calls the public API; a bad input raises
:class:`~complaw.errors.ComplawError`, which :func:`main` turns into one line on stderr and exit code 2.
Command groups that live elsewhere (``complaw zoo …``) are attached with one ``add_typer`` line each.
"""

from __future__ import annotations

import importlib
import sys

import typer

from complaw.errors import ComplawError

# Usage errors (unknown option, missing argument, bad value): typer >= 0.29 raises its own vendored click's
# exceptions (subclasses of typer.TyperException), older typer raises click's. Both are caught in main().
_USAGE_ERRORS: tuple[type[BaseException], ...] = (getattr(typer, "TyperException", Exception),)
try:
    import click

    _USAGE_ERRORS += (click.ClickException,)
except ImportError:  # pragma: no cover - typer without click
    pass

app = typer.Typer(
    name="complaw",
    help="Compression laws for LLMs: compress, recover, evaluate, fit laws, decide.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"complaw {version('complaw')}")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
            typer.echo("complaw (not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library warnings (torch, transformers, "
                                 "lm-eval, numpy…) on the console; by default they go to complaw.log in the "
                                 "cache directory ($COMPLAW_CACHE, else ~/.cache/complaw)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print complaw's version and exit."),
) -> None:
    """Compression laws for LLMs: compress, recover, evaluate, fit laws, decide."""
    if verbose:
        from complaw import logs

        logs.release()


# Modules that register commands on `app` when imported: add yours to this tuple (one entry each).
COMMAND_MODULES = (
    "complaw.cli_laws",  # fit, validate, critical, speedup, plan, forms, demo
    "complaw.cli_compress",  # compress, methods
    "complaw.cli_run",  # run
    "complaw.cli_sweep",  # sweep, results
    "complaw.cli_zoo",  # zoo list, zoo build
    "complaw.cli_policy",  # policy list, policy clear
    "complaw.cli_report",  # report
    "complaw.cli_capacity",  # capacity
)
for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit code 2.

    Library warnings are captured into a log file for the duration (``--verbose`` shows them instead)."""
    from complaw import logs

    logs.capture()
    try:
        code = app(args=argv, standalone_mode=False)
    except ComplawError as err:
        typer.echo(f"error: {err}", err=True)
        return err.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except _USAGE_ERRORS as ex:  # usage errors: click's usage text and the error, exit 2
        if hasattr(ex, "show"):
            ex.show()
        else:
            typer.echo(f"error: {ex}", err=True)
        return getattr(ex, "exit_code", 2)
    except typer.Exit as ex:
        return ex.exit_code
    except SystemExit as ex:  # click usage errors raise SystemExit(2) after printing
        return ex.code if isinstance(ex.code, int) else 1
    finally:
        logs.release()
    # a command that returns an exit code (the sweep returns 130 when interrupted) has it propagated
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":  # `python -m complaw.cli`: run the imported module's app, not this copy's
    from complaw.cli import _console_main as run

    run()
