"""Small data files shipped with complaw (the law engine's example table)."""

from pathlib import Path


def example_table_path() -> Path:
    """The bundled *synthetic* example results table (see scripts/make_example_table.py)."""
    return Path(__file__).with_name("example_results.csv")
