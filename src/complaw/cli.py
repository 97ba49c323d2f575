"""The ``complaw`` command line.

Every subcommand is a plain typed function that calls the public API; a bad input raises
:class:`~complaw.errors.ComplawError`, which :func:`main` turns into one line on stderr and exit code 2.
Command groups that live elsewhere (``complaw zoo …``) are attached with one ``add_typer`` line each.
"""

from __future__ import annotations

import sys

import click
import typer

from complaw.errors import ComplawError

app = typer.Typer(
    name="complaw",
    help="Compression laws for LLMs: compress, recover, evaluate, fit laws, decide.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command groups defined in their own modules register here, one line each.
from complaw import cli_laws  # noqa: E402,F401  (registers fit/validate/critical/plan/forms/demo)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except ComplawError as err:
        typer.echo(f"error: {err}", err=True)
        return err.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except click.ClickException as ex:  # usage errors: click prints them, exit 2
        ex.show()
        return ex.exit_code
    except typer.Exit as ex:
        return ex.exit_code
    except SystemExit as ex:  # click usage errors raise SystemExit(2) after printing
        return ex.code if isinstance(ex.code, int) else 1
    return 0


def _console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _console_main()
