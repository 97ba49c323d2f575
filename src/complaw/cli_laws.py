"""CLI commands of the law engine (being written)."""
