"""Calibration-free FFN pruning on a real LLM (#15): random slicing's seed spread, PruneNet and its policy
options, L2 magnitude and max-|weight| scores, on SmolLM2-135M — loss on code and prose, no RFT.

    $ .venv/bin/python benchmarks/bench_prunenet_real.py                    # the tables in BENCHMARKS.md
    $ .venv/bin/python benchmarks/bench_prunenet_real.py --ratios 0.3 --seeds 3 --blocks 8

Also prints, per PruneNet setting, what the policy learned: the share of keep probabilities above 0.999
(saturated), the first and best episode's total reward, and the Spearman correlation of its scores with
the L2 magnitude score. Every loss is the token-weighted cross-entropy over ``--blocks`` × ``--seq-len``
tokens of ``zoo:test`` (Python source) and ``zoo:prose-test`` (English prose); ``--splits`` picks them.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

import complaw
from complaw.compress import compress
from complaw.compress.ffn import magnitude_scores
from complaw.compress.prunenet import PruneNetConfig, gate_weights, train_policy
from complaw.evaluate import lm_loss
from complaw.models.adapters import get_adapter
from complaw.textdata import load_texts, token_blocks

SETTINGS = {  # PruneNet training settings compared (all with the default episodes, lr, features)
    "default (paper: advantage=reward)": {},
    "advantage=baseline": {"advantage": "baseline"},
    "advantage=normalized, draws=4": {"advantage": "normalized", "draws": 4},
    "advantage=normalized, draws=4, entropy=0.05": {"advantage": "normalized", "draws": 4, "entropy": 0.05},
    "temperature=0.5": {"temperature": 0.5},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="real:smollm2-135m")
    ap.add_argument("--ratios", default="0.1,0.3,0.5,0.9")
    ap.add_argument("--seeds", type=int, default=5, help="random-ffn seeds")
    ap.add_argument("--blocks", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--splits", default="zoo:test,zoo:prose-test", help="test splits scored (comma-separated)")
    ap.add_argument("--topk-for", default="all", help="PruneNet settings also scored with selection=topk: "
                    "'all', 'default' or 'none'")
    args = ap.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    model = complaw.load(args.model, dtype=torch.float32).eval()
    tok = complaw.load_tokenizer(args.model)
    splits = args.splits.split(",")
    sets = {s: token_blocks(load_texts(s), tok, args.seq_len, max_blocks=args.blocks) for s in splits}

    def losses(method, ratio, **options):
        pruned, _ = compress(copy.deepcopy(model), method, ratio, **options)
        return tuple(lm_loss(pruned, b).loss for b in sets.values())

    dense = tuple(lm_loss(model, b).loss for b in sets.values())
    print(f"{args.model}: dense {' / '.join(f'{x:.4f}' for x in dense)} ({' / '.join(splits)}); "
          f"{args.blocks} × {args.seq_len} tokens each\n")
    print(f"| method | {' | '.join(f'r = {r:g}' for r in ratios)} |")
    print(f"|---|{'---|' * len(ratios)}")
    spread = {}
    for r in ratios:
        runs = [losses("random-ffn", r, seed=s) for s in range(args.seeds)]
        spread[r] = [(statistics.mean(x), statistics.stdev(x), min(x), max(x)) for x in zip(*runs, strict=True)]
    print(f"| random-ffn, {args.seeds} seeds: mean ± sd [min, max] | " + " | ".join(
        " / ".join(f"{m:.3f} ± {s:.3f} [{lo:.2f}, {hi:.2f}]" for m, s, lo, hi in spread[r]) for r in ratios) + " |", flush=True)
    for method in ("magnitude-ffn", "maxabs-ffn"):
        print(f"| {method} | " + " | ".join(" / ".join(f"{x:.3f}" for x in losses(method, r)) for r in ratios) + " |", flush=True)
    learned = []
    for label, options in SETTINGS.items():
        start = time.perf_counter()
        policy = train_policy(model, PruneNetConfig(**options))
        wall = time.perf_counter() - start
        topk = args.topk_for == "all" or (args.topk_for == "default" and not options)
        for selection in ("sample", "topk") if topk else ("sample",):
            row = [losses("prunenet", r, policy=policy, selection=selection) for r in ratios]
            print(f"| prunenet {label}, selection={selection} | " + " | ".join(
                " / ".join(f"{x:.3f}" for x in pair) for pair in row) + " |", flush=True)
        learned.append((label, policy, wall))
    print("\n| PruneNet setting | saturated α (> 0.999) | layer-0 α min / median / max | reward: first → best episode "
          "(best at) | Spearman(score, L2 magnitude) | train s |\n|---|---|---|---|---|---|")
    from scipy.stats import spearmanr

    adapter, gates = get_adapter(model), gate_weights(model)
    mlps = [adapter.mlp_linears(layer) for layer in adapter.layers_of(model)]
    for label, policy, wall in learned:
        with torch.no_grad():
            alphas = [policy.keep_probs(w) for w in gates]
            rho = statistics.mean(spearmanr(policy.logits(w).numpy(), magnitude_scores(*m).numpy()).statistic
                                  for w, m in zip(gates, mlps, strict=True))
        sat = float(torch.cat(alphas).gt(0.999).float().mean())
        a0 = alphas[0]
        h = policy.history
        print(f"| {label} | {sat:.3f} | {a0.min():.4f} / {a0.median():.4f} / {a0.max():.4f} | "
              f"{h.episode_rewards[0]:.1f} → {max(h.episode_rewards):.1f} ({h.best_episode}) | {rho:.3f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
