"""The ``complaw`` command line.

Every command is a plain typed function in one module per command group (``cli/laws.py``, ``cli/sweep.py`` …),
named in the single table :data:`COMMANDS`; the modules import nothing from here (one direction), and heavy
libraries (torch, pandas) are imported inside the commands that need them. A bad input raises
:class:`~complaw.errors.ComplawError`, which :func:`main` turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
import importlib
import os
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


#: Every command: its name (a group's subcommand as "group name") → "module:function". The functions are plain
#: typed functions (their parameters are the options); none of them calls another command. A new command is one
#: line here.
COMMANDS: dict[str, str] = {
    # the law engine: results tables → laws → decisions
    "fit": "complaw.cli.laws:fit_cmd",
    "validate": "complaw.cli.laws:validate_cmd",
    "critical": "complaw.cli.laws:critical_cmd",
    "speedup": "complaw.cli.laws:speedup_cmd",
    "plan": "complaw.cli.laws:plan_cmd",
    "forms": "complaw.cli.laws:forms_cmd",
    "report": "complaw.cli.report:report_cmd",
    "capacity": "complaw.cli.capacity:capacity_cmd",
    # the experiments: models → compression → recovery and evaluation → the store
    "compress": "complaw.cli.compress:compress_command",
    "methods": "complaw.cli.compress:methods_command",
    "run": "complaw.cli.run:run_command",
    "sweep": "complaw.cli.sweep:sweep_command",
    "results": "complaw.cli.sweep:results_command",
    "demo": "complaw.cli.demo:demo_cmd",
    # the embedded default and the caches
    "zoo list": "complaw.cli.zoo:list_cmd",
    "zoo fetch": "complaw.cli.zoo:fetch_cmd",
    "zoo clear": "complaw.cli.zoo:clear_cmd",
    "zoo build": "complaw.cli.zoo:build_cmd",
    "zoo example": "complaw.cli.example:example_cmd",
    "policy list": "complaw.cli.policy:list_cmd",
    "policy clear": "complaw.cli.policy:clear_cmd",
}

#: Command groups (``complaw zoo …``) and their help.
GROUPS: dict[str, str] = {
    "zoo": "The bundled model zoo (small trained Llama/Qwen2 models, corpus splits, tasks), the example results "
           "table, and real pretrained models fetched by name (real:NAME).",
    "policy": "PruneNet policies cached on disk (trained once per model and settings, then reused).",
}


def _register() -> None:
    """Attach every command of :data:`COMMANDS` to :data:`app` (importing only typer/rich-level modules)."""
    groups = {name: typer.Typer(help=text, no_args_is_help=True) for name, text in GROUPS.items()}
    for name, sub in groups.items():
        app.add_typer(sub, name=name)
    for name, target in COMMANDS.items():
        module, _, attr = target.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        group, _, leaf = name.rpartition(" ")
        (groups[group] if group else app).command(leaf)(fn)


_register()


#: Errors of a path itself (not of the disk or of complaw), by errno: one line, exit 2, like any bad input.
_PATH_ERRNOS = {
    errno.ENAMETOOLONG: "the path is longer than the file system allows (255 bytes a name, 4096 in all); "
                        "use a shorter one",
    errno.EACCES: "permission denied; check the permissions of the file and of its folders",
    errno.EPERM: "operation not permitted; check the permissions of the file and of its folders",
    errno.EROFS: "on a read-only file system; choose a writable place",
}


def _path_text(filename) -> str:
    text = repr(os.fsdecode(filename)) if filename is not None else "a path"
    return text if len(text) <= 80 else f"{text[:77]}… ({len(text)} characters)"


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
    except KeyboardInterrupt as err:  # Ctrl-C: 130; a sweep's SIGTERM (sweep.run.Terminated): "terminated", 143
        typer.echo(getattr(err, "message", "interrupted"), err=True)
        return getattr(err, "exit_code", 130)
    except _USAGE_ERRORS as ex:  # usage errors: click's usage text and the error, exit 2
        if hasattr(ex, "show"):
            ex.show()
        else:
            typer.echo(f"error: {ex}", err=True)
        return getattr(ex, "exit_code", 2)
    except OSError as err:  # a path the operating system refuses outright, wherever it is first touched
        if err.errno not in _PATH_ERRNOS:
            raise
        typer.echo(f"error: {_path_text(err.filename)}: {_PATH_ERRNOS[err.errno]}", err=True)
        return 2
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
