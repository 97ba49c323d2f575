"""Real pretrained models through every compression method: conversion, compression time, param_reduction
and test loss on code and prose, beside the dense loss.

    $ .venv/bin/python benchmarks/bench_real.py --model real:smollm2-135m
    $ .venv/bin/python benchmarks/bench_real.py --model real:gemma3-270m --methods prunenet,random-ffn
    $ .venv/bin/python benchmarks/bench_real.py --policy-only       # PruneNet policy time, default vs patience

Prints markdown tables (one row per method × ratio) to paste into BENCHMARKS.md. Each loss is the
token-weighted cross-entropy over ``--blocks`` blocks of ``--seq-len`` tokens of ``zoo:test`` (Python
stdlib source) and ``zoo:prose-test`` (the language reference's English prose). Times are wall and
process-CPU seconds (the machine is shared: CPU time is the steadier of the two).
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
from pathlib import Path

import torch

import complaw
from complaw.compress import compress
from complaw.compress.registry import unsupported_reason
from complaw.evaluate import lm_loss
from complaw.models.io import resolve_model_id
from complaw.textdata import load_texts, token_blocks

RATIOS = (0.1, 0.3, 0.5, 0.7, 0.9)
METHODS = ("prunenet", "random-ffn", "magnitude-ffn", "layer-drop", "slicegpt")


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def convert_time(model_id: str) -> tuple[float, float]:
    """Wall/CPU seconds of a fresh GGUF → safetensors conversion of a fetched real model."""
    from complaw.models.gguf import convert_gguf
    from complaw.zoo import real

    spec = real.get(model_id)
    real.fetch(model_id)
    out = Path(tempfile.mkdtemp()) / "converted"
    try:
        with Timer() as t:
            convert_gguf(spec.home / spec.gguf_name, out=out, progress=False)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    return t.wall, t.cpu


def policy_times(model, episodes: int, patience_values: tuple[int, ...]) -> None:
    from complaw.compress.prunenet import PruneNetConfig, train_policy

    print("| policy setting | episodes run | best episode | wall s | CPU s |\n|---|---|---|---|---|")
    for patience in patience_values:
        with Timer() as t:
            policy = train_policy(model, PruneNetConfig(episodes=episodes, patience=patience))
        h = policy.history
        label = "default (paper: fixed episodes)" if patience == 0 else f"patience={patience}"
        print(f"| {label} | {len(h.episode_rewards)} | {h.best_episode} | {t.wall:.1f} | {t.cpu:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="real:smollm2-135m")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    ap.add_argument("--blocks", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--policy-only", action="store_true", help="only time PruneNet policy training")
    ap.add_argument("--episodes", type=int, default=20)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with Timer() as t_fetch:
        resolve_model_id(args.model)
    with Timer() as t_load:
        model = complaw.load(args.model, dtype=torch.float32).eval()
        tok = complaw.load_tokenizer(args.model)
    print(f"{args.model}: resolve {t_fetch.wall:.1f} s (fetch+convert when not cached), load {t_load.wall:.1f} s "
          f"wall / {t_load.cpu:.1f} s CPU; threads {torch.get_num_threads()}")
    if args.policy_only:
        policy_times(model, args.episodes, (0, 5, 3))
        return
    wall, cpu = convert_time(args.model)
    print(f"fresh GGUF conversion: {wall:.1f} s wall / {cpu:.1f} s CPU")
    sets = {split: token_blocks(load_texts(split), tok, args.seq_len, max_blocks=args.blocks)
            for split in ("zoo:test", "zoo:prose-test")}
    dense = {split: lm_loss(model, b).loss for split, b in sets.items()}
    print(f"dense: code {dense['zoo:test']:.4f}, prose {dense['zoo:prose-test']:.4f} "
          f"({args.blocks} × {args.seq_len} tokens each)\n")
    print("| method | r | param_reduction | compress wall s | CPU s | code loss | prose loss |")
    print("|---|---|---|---|---|---|---|")
    print(f"| dense | 0 | 0 | - | - | {dense['zoo:test']:.4f} | {dense['zoo:prose-test']:.4f} |", flush=True)
    for method in args.methods.split(","):
        reason = unsupported_reason(method, model)
        if reason:
            print(f"| {method} | - | refused: {reason.split(';')[0]} | | | | |", flush=True)
            continue
        for ratio in map(float, args.ratios.split(",")):
            work = copy.deepcopy(model)
            opts = {"tokenizer": tok} if method in ("layer-drop", "slicegpt") else {}
            with Timer() as t:
                work, record = compress(work, method, ratio, **opts)
            losses = {split: lm_loss(work, b).loss for split, b in sets.items()}
            print(f"| {method} | {ratio:g} | {record.param_reduction:.4f} | {t.wall:.1f} | {t.cpu:.1f} | "
                  f"{losses['zoo:test']:.4f} | {losses['zoo:prose-test']:.4f} |", flush=True)
            del work


if __name__ == "__main__":
    main()
