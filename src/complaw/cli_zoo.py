"""``complaw zoo …``: list and rebuild the bundled model zoo.

    $ complaw zoo list
    $ complaw zoo build --only llama-xs --out /tmp/zoo
"""

from __future__ import annotations

from pathlib import Path

import typer

from complaw.cli import app
from complaw.errors import ComplawError

zoo_app = typer.Typer(help="The bundled model zoo: small trained Llama/Qwen2 models, corpus splits, tasks.",
                      no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


def list_zoo() -> dict:
    """Print the zoo's models, tasks and splits as rich tables; return the index."""
    from rich.console import Console
    from rich.table import Table

    from complaw import zoo

    index = zoo.index()
    console = Console(width=max(Console().width, 130))  # keep names and numbers unabridged
    models = Table(title="models (zoo:NAME)")
    for col in ("name", "family", "params", "non-emb params", "train tokens", "test loss", "avg acc"):
        models.add_column(col, justify="left" if col in ("name", "family") else "right")
    for m in zoo.list_models():
        c = zoo.card(m.name)
        models.add_row(m.id, m.model_type, f"{m.params:,}", f"{m.non_embedding_params:,}",
                       f"{c['training']['tokens']:,}", f"{m.test_loss:.4f}", f"{m.avg_acc:.3f}")
    console.print(models)
    console.print(f"unigram entropy of the test split: {index['unigram_entropy_test']:.4f} nats/token")
    tasks = Table(title="tasks (lm-eval, multiple choice, 4 options)")
    for col in ("task", "items", "what"):
        tasks.add_column(col)
    for name, t in index["tasks"].items():
        tasks.add_row(name, str(t["items"]), t["description"])
    console.print(tasks)
    splits = Table(title="splits (zoo:NAME)")
    for col in ("split", "documents", "chars", "tokens", "shipped"):
        splits.add_column(col, justify="left" if col == "split" else "right")
    for name, s in index["splits"].items():
        splits.add_row(name, str(s["documents"]), f"{s['chars']:,}",
                       f"{s['tokens']:,}" if "tokens" in s else "-", "no" if s.get("shipped") is False else "yes")
    console.print(splits)
    console.print(f"shipped size: {zoo.shipped_bytes() / 1e6:.1f} MB; last full build: "
                  f"{sum(index['build']['stage_seconds'].values()) / 60:.0f} min on {index['build']['threads']} threads")
    return index


@zoo_app.command("list")
def list_cmd() -> None:
    """List the bundled models (params, test loss), tasks (items) and splits (sizes)."""
    list_zoo()


@zoo_app.command("build")
def build_cmd(
    only: list[str] = typer.Option(None, "--only", help="rebuild only these (model names, splits, tokenizer, tasks); repeatable"),
    out: Path = typer.Option(None, "--out", help="target directory (default: the package's zoo assets)"),
) -> None:
    """Rebuild the zoo deterministically on CPU (all of it: ~50 min on a busy 2-core machine; llama-xs: ~2 min)."""
    from complaw.zoo.build import build

    names = [n for item in (only or []) for n in item.split(",") if n]
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ComplawError(f"--out {str(out)!r}: cannot create the directory ({err.strerror}); "
                               "give a writable directory") from None
    build(out=out, only=names or None)
