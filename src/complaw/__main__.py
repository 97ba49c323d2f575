"""``python -m complaw`` runs the CLI."""

from complaw.cli import _console_main

_console_main()
