"""``complaw policy …``: the PruneNet policies complaw has trained, cached on disk for reuse.

    $ complaw policy list
    $ complaw policy clear

A PruneNet policy is trained once per model and training settings and kept in ``$COMPLAW_CACHE/prunenet``
(safetensors, keyed by the fingerprint of the model's gate weights and a hash of the settings); every later
``compress``, ``run`` or sweep unit on the same weights with the same settings reuses it.
"""

from __future__ import annotations

import typer


def list_cmd() -> None:
    """List the cached policies: model fingerprint, shape, settings, episodes run, training time, file."""
    from rich.console import Console
    from rich.table import Table

    from complaw.cache import reading
    from complaw.compress.prunenet import cached_policies, policy_cache_dir

    with reading():  # a read command: a missing cache folder reads as empty and is not created
        rows = cached_policies()
        where = policy_cache_dir()
    console = Console(width=max(Console().width, 130))
    if not rows:
        console.print(f"no cached PruneNet policies in {where}")
        return
    table = Table(title=f"PruneNet policies in {where}")
    for col in ("fingerprint", "rows × cols", "settings", "episodes", "best", "train s", "KiB", "file"):
        table.add_column(col, justify="right" if col in ("episodes", "best", "train s", "KiB") else "left")
    for r in rows:
        if "error" in r:
            table.add_row("?", "-", r["error"], "-", "-", "-", f"{r['bytes'] / 1024:.0f}", r["path"].rsplit("/", 1)[-1])
            continue
        c = r["config"] or {}
        settings = ", ".join(f"{k}={c[k]}" for k in ("episodes", "lr", "advantage", "draws", "features", "seed") if k in c)
        table.add_row(r["fingerprint"], f"{r['shape'][0]} × {r['shape'][1]}", settings, str(r["episodes_run"]),
                      str(r["best_episode"]), f"{r['train_time_s']:.1f}", f"{r['bytes'] / 1024:.0f}",
                      r["path"].rsplit("/", 1)[-1])
    console.print(table)


def clear_cmd() -> None:
    """Delete every cached policy (the next PruneNet call on a model trains its policy again)."""
    from complaw.cache import reading
    from complaw.compress.prunenet import clear_policy_cache, policy_cache_dir

    with reading():  # clearing a cache that is not there creates nothing
        removed = clear_policy_cache(disk=True)
        where = policy_cache_dir()
    typer.echo(f"removed {removed} cached PruneNet polic{'y' if removed == 1 else 'ies'} from {where}")
