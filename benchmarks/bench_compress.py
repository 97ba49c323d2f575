"""Benchmark the structured-compression methods: wall time, and whether FFN slicing buys real speed.

Two questions, on a random-initialised Llama of ~200M parameters (hidden 1024, 12 layers, FFN 2816,
vocab 32000 by default) on this machine's CPU:

1. Compression wall time per method for a 9-ratio sweep (r = 0.1 … 0.9). For PruneNet the policy is
   trained once (through the registry's cache) and reused: we report training time, the sweep's time and
   the ratio of "9 ratios" to "1 ratio", which "you only prune once" says should be well under 2×.
2. Forward-pass speedup of FFN-sliced models at r ∈ {0.3, 0.5, 0.7} against the FLOP-ideal speedup
   (dense FLOPs / sliced FLOPs, counted honestly: attention projections, attention scores, FFN and the LM
   head). Median of repeats after warm-up, under ``torch.inference_mode``; dense and sliced models are
   timed round-robin so that load drift on a shared machine hits them alike.

    $ .venv/bin/python benchmarks/bench_compress.py            # ~5 minutes on 2 cores
    $ .venv/bin/python benchmarks/bench_compress.py --quick    # small model, smoke test
    $ .venv/bin/python benchmarks/bench_compress.py --zoo zoo:llama-m   # PruneNet vs random test loss
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from complaw.compress import compress
from complaw.compress.layerdrop import clear_block_influence_cache
from complaw.compress.prunenet import clear_policy_cache

SWEEP = tuple(round(0.1 * i, 1) for i in range(1, 10))


def forward_flops(config, batch: int, seq: int) -> dict[str, float]:
    """Multiply-add FLOPs (×2) of one forward pass, by component. Embedding lookups and norms are ~free."""
    d, n, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    head_dim = d // config.num_attention_heads
    q_dim, kv_dim = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    tokens = batch * seq
    proj = 2 * tokens * d * (2 * q_dim + 2 * kv_dim) * layers  # q, o (q_dim) and k, v (kv_dim)
    # Q·Kᵀ and P·V over the full T×T square: what the math/SDPA kernels compute without causal skipping.
    scores = 2 * 2 * batch * seq * seq * q_dim * layers
    ffn = 2 * tokens * 3 * d * n * layers
    head = 2 * tokens * d * vocab
    return {"attn_proj": proj, "attn_scores": scores, "ffn": ffn, "lm_head": head,
            "total": proj + scores + ffn + head}


def build_model(args) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                         num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                         num_key_value_heads=args.hidden // 64, max_position_embeddings=max(2048, args.seq),
                         tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


def time_sweep(model, method: str, ratios, **options) -> tuple[float, list[float], dict]:
    """Total compression seconds over ``ratios`` (deep copies excluded), per-ratio seconds, first record's details."""
    per_ratio, first = [], None
    for r in ratios:
        work = copy.deepcopy(model)
        start = time.perf_counter()
        _, record = compress(work, method, r, seed=0, **options)
        per_ratio.append(time.perf_counter() - start)
        first = first or record.details
        del work
    return sum(per_ratio), per_ratio, first or {}


def bench_wall_time(model, args) -> None:
    print(f"\n## Compression wall time ({len(SWEEP)} ratios, r = 0.1 … 0.9)\n")
    print(f"| method | 1 ratio (r=0.5) s | {len(SWEEP)} ratios s | {len(SWEEP)}-ratio / 1-ratio | note |")
    print("|---|---|---|---|---|")
    calib = torch.randint(0, args.vocab, (args.calib_rows, args.calib_seq), generator=torch.Generator().manual_seed(0))
    methods = {
        "prunenet": {"episodes": args.episodes},
        "random-ffn": {},
        "magnitude-ffn": {},
        "layer-drop": {"calibration": calib, "batch_size": 2, "seq_len": args.calib_seq},
    }
    for method, options in methods.items():
        if args.methods and method not in args.methods:
            continue
        clear_policy_cache()
        clear_block_influence_cache()
        one, _, details = time_sweep(model, method, [0.5], **options)  # cold: PruneNet trains its policy here
        # The sweep reuses the cached policy; a cold 9-ratio sweep costs the cold r=0.5 run plus the
        # other 8 ratios (training is deterministic, so it is timed once instead of twice).
        rest = [r for r in SWEEP if r != 0.5]
        rest_total, per_ratio, _ = time_sweep(model, method, rest, **options)
        total = one + rest_total
        note = ""
        if method == "prunenet":
            train_s = details.get("policy_train_time_s", 0.0)
            note = (f"policy training {train_s:.1f} s ({args.episodes} episodes), then "
                    f"{statistics.median(per_ratio):.2f} s per further ratio")
        elif method == "layer-drop":
            note = (f"block influence on {args.calib_rows}×{args.calib_seq} tokens, measured once and reused by "
                    f"the {len(rest)} further ratios ({statistics.median(per_ratio):.2f} s each)")
        print(f"| {method} | {one:.2f} | {total:.2f} | {total / one:.2f}× | {note} |")


@torch.inference_mode()
def bench_speed(model, args) -> None:
    ratios = (0.3, 0.5, 0.7)
    variants = {"dense": model}
    for r in ratios:
        variants[f"r={r}"] = compress(copy.deepcopy(model), "random-ffn", r)[0]
        if args.round_to > 1:
            variants[f"r={r}, round_to={args.round_to}"] = compress(copy.deepcopy(model), "random-ffn", r,
                                                                    round_to=args.round_to)[0]
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=torch.Generator().manual_seed(1))
    for m in variants.values():  # warm-up
        for _ in range(args.warmup):
            m(input_ids=ids, use_cache=False)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # round-robin: drift on a shared machine hits every variant alike
        for name, m in variants.items():
            start = time.perf_counter()
            m(input_ids=ids, use_cache=False)
            times[name].append(time.perf_counter() - start)
    dense_flops = forward_flops(model.config, args.batch, args.seq)
    dense_t = statistics.median(times["dense"])
    share = {k: v / dense_flops["total"] for k, v in dense_flops.items() if k != "total"}
    print(f"\n## Forward-pass speedup of FFN-sliced models (batch {args.batch} × {args.seq} tokens, "
          f"{torch.get_num_threads()} threads, median of {args.repeats})\n")
    print("Dense FLOP shares: " + ", ".join(f"{k} {v:.1%}" for k, v in share.items()) + "\n")
    print("| model | FFN width | latency s | measured speedup | FLOP-ideal speedup | FFN-only ideal 1/(1−r) "
          "| measured / FLOP-ideal |")
    print("|---|---|---|---|---|---|---|")
    for name, m in variants.items():
        t = statistics.median(times[name])
        flops = forward_flops(m.config, args.batch, args.seq)["total"]
        ideal = dense_flops["total"] / flops
        n = m.config.intermediate_size
        ffn_only = args.ffn / n
        measured = dense_t / t
        print(f"| {name} | {n} | {t:.3f} | {measured:.3f}× | {ideal:.3f}× | {ffn_only:.3f}× | {measured / ideal:.3f} |")


def bench_zoo_loss(args) -> None:
    """Test loss of PruneNet vs random slicing (several seeds: the noise) vs magnitude, r = 0.1 … 0.9."""
    from transformers import AutoTokenizer

    from complaw import zoo
    from complaw.compress.prunenet import PruneNetConfig, prune_with_policy, train_policy
    from complaw.models import load
    from complaw.zoo.lm import mean_loss, token_blocks

    model = load(args.zoo).eval()
    tok = AutoTokenizer.from_pretrained(str(zoo.tokenizer_path()))
    input_ids, mask = token_blocks(tok, zoo.load_split("test"), seq_len=args.zoo_seq)
    blocks = (input_ids[: args.zoo_blocks], mask[: args.zoo_blocks])
    dense = mean_loss(model, blocks)
    policies, notes = {}, []
    for features in ("abs", "signed"):
        start = time.perf_counter()
        policies[features] = train_policy(model, PruneNetConfig(episodes=args.episodes, features=features))
        notes.append(f"{features}: {time.perf_counter() - start:.1f} s, best episode {policies[features].history.best_episode}")
    print(f"\n## Test loss on {args.zoo}: PruneNet vs random FFN slicing ({args.zoo_blocks}×{args.zoo_seq} test tokens)\n")
    print(f"Dense loss {dense:.4f}. PruneNet policies ({args.episodes} episodes): {'; '.join(notes)}. "
          f"'sample' columns average {args.pn_seeds} selection seeds; random averages {args.random_seeds} seeds "
          f"(± its standard deviation = the noise); z = (PruneNet sample − random mean) / random sd. "
          f"abs = the default policy input |W|; signed = the paper's W.\n")
    print("| r | random mean ± sd | PruneNet sample (abs) | z | PruneNet top-k (abs) | PruneNet sample (signed) | z "
          "| PruneNet top-k (signed) | magnitude |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in args.ratios or SWEEP:
        rand = [mean_loss(compress(copy.deepcopy(model), "random-ffn", r, seed=s)[0], blocks) for s in range(args.random_seeds)]
        mu, sd = statistics.mean(rand), statistics.stdev(rand)
        cells = [f"{mu:.4f} ± {sd:.4f}"]
        for policy in policies.values():
            pn = statistics.mean(
                mean_loss(prune_with_policy(copy.deepcopy(model), policy, r, selection="sample", seed=s)[0], blocks)
                for s in range(args.pn_seeds))
            top = mean_loss(prune_with_policy(copy.deepcopy(model), policy, r, selection="topk")[0], blocks)
            cells += [f"{pn:.4f}", f"{(pn - mu) / sd:+.2f}", f"{top:.4f}"]
        cells.append(f"{mean_loss(compress(copy.deepcopy(model), 'magnitude-ffn', r)[0], blocks):.4f}")
        print(f"| {r:.1f} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--ffn", type=int, default=2816)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--calib-rows", type=int, default=2)
    parser.add_argument("--calib-seq", type=int, default=256)
    parser.add_argument("--round-to", type=int, default=64, help="also time kept sizes rounded to this (1: skip)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip-wall", action="store_true", help="only the speed part")
    parser.add_argument("--skip-speed", action="store_true", help="only the wall-time part")
    parser.add_argument("--methods", nargs="*", default=None, help="wall time: only these methods")
    parser.add_argument("--quick", action="store_true", help="small model, few repeats: a smoke test")
    parser.add_argument("--zoo", default=None, help="instead: test loss of PruneNet vs random on this zoo model")
    parser.add_argument("--zoo-blocks", type=int, default=128)
    parser.add_argument("--zoo-seq", type=int, default=128)
    parser.add_argument("--random-seeds", type=int, default=10)
    parser.add_argument("--pn-seeds", type=int, default=5)
    parser.add_argument("--ratios", type=float, nargs="*", default=None, help="--zoo: only these ratios")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.zoo:
        bench_zoo_loss(args)
        return
    if args.quick:
        args.hidden, args.layers, args.ffn, args.vocab, args.seq = 256, 2, 704, 1000, 128
        args.repeats, args.episodes, args.warmup = 3, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args)
    params = sum(p.numel() for p in model.parameters())
    print(f"# bench_compress: Llama hidden {args.hidden}, {args.layers} layers, FFN {args.ffn}, vocab {args.vocab}: "
          f"{params / 1e6:.1f}M parameters, fp32, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_wall:
        bench_wall_time(model, args)
    if not args.skip_speed:
        bench_speed(model, args)


if __name__ == "__main__":
    main()
