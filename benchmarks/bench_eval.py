"""Evaluation overhead, measured side by side in one run.

1. Intrinsic evaluation (complaw.evaluate.lm_loss) against a bare forward pass over the same batches:
   tokens/s of each and their ratio (target ≥ 0.9×).
2. Zero-shot evaluation through lm-evaluation-harness (complaw.evaluate.zero_shot) against bare
   log-likelihood scoring of the same items (context + each choice, one batched forward pass per group of
   pairs, summed log-probabilities of the choice tokens): wall time of each and the overhead factor.

    python benchmarks/bench_eval.py [--model zoo:llama-l] [--blocks 64] [--items 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from complaw.evaluate import lm_loss, zero_shot
from complaw.models import load
from complaw.recipe import load_tokenizer
from complaw.textdata import load_texts, token_blocks


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best_of(fn, repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def interleaved(fa, fb, repeats: int) -> tuple[float, float, float]:
    """Best time of each of two functions run alternately (a, b, a, b, ...), and the median of the
    per-round ratios t_a / t_b: alternating rounds keep a drifting machine load out of the comparison."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(timed(fa))
        tb.append(timed(fb))
    return min(ta), min(tb), statistics.median(a / b for a, b in zip(ta, tb, strict=True))


@torch.inference_mode()
def bare_forward(model, blocks, batch_size):
    for i in range(0, len(blocks), batch_size):
        model(input_ids=blocks[i:i + batch_size], use_cache=False)


@torch.inference_mode()
def bare_loglikelihood(model, tok, items, batch_size):
    """Sum log p(choice | context) for every (item, choice) pair — the work lm-eval does for MC tasks."""
    pairs = []
    for it in items:
        ctx = tok(it["context"], add_special_tokens=False)["input_ids"]
        for ch in it["choices"]:
            cont = tok(ch, add_special_tokens=False)["input_ids"]
            pairs.append((ctx, cont))
    pad = tok.pad_token_id or 0
    max_len = model.config.max_position_embeddings
    pairs.sort(key=lambda p: -len(p[0] + p[1]))  # longest first, as lm-eval does, to limit padding
    scores = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        seqs = [(c + x)[-max_len:] for c, x in chunk]
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), pad)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.tensor(s)
        logp = F.log_softmax(model(input_ids=ids).logits.float(), -1)
        for j, (s, (_, cont)) in enumerate(zip(seqs, chunk, strict=True)):
            k = len(cont)
            pos = torch.arange(len(s) - k - 1, len(s) - 1)
            scores.append(logp[j, pos, torch.tensor(s[-k:])].sum().item())
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zoo:llama-l")
    ap.add_argument("--blocks", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--task", default="zoo_nextline")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--random-llama", metavar="HIDDEN,LAYERS,VOCAB", default=None,
                    help="time the intrinsic part on a random-initialised Llama of this shape instead (no tasks)")
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.random_llama:
        from transformers import LlamaConfig, LlamaForCausalLM

        hidden, layers, vocab = (int(x) for x in args.random_llama.split(","))
        model = LlamaForCausalLM(LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, vocab_size=vocab,
                                             intermediate_size=hidden * 8 // 3 // 64 * 64,
                                             num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64)).eval()
        blocks = torch.randint(0, vocab, (args.blocks, args.seq_len))
        args.model = f"random Llama {hidden}x{layers}, vocab {vocab}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M"
    else:
        model = load(args.model).eval()
        tok = load_tokenizer(args.model)
        blocks = token_blocks(load_texts("zoo:test"), tok, args.seq_len, args.blocks)
    tokens = blocks.numel()
    bare_forward(model, blocks, args.batch_size)  # warm-up
    t_bare, t_ours, ratio = interleaved(lambda: bare_forward(model, blocks, args.batch_size),
                                        lambda: lm_loss(model, blocks, batch_size=args.batch_size), args.repeats)
    print(f"model {args.model}  threads {args.threads}  {len(blocks)} blocks × {args.seq_len} tokens")
    print(f"{'intrinsic evaluation':<40}{'seconds':>9}{'tokens/s':>12}")
    print(f"{'bare forward pass':<40}{t_bare:>9.3f}{tokens / t_bare:>12.0f}")
    print(f"{'complaw lm_loss':<40}{t_ours:>9.3f}{tokens / t_ours:>12.0f}")
    print(f"throughput ratio complaw / bare: {ratio:.3f} (median over {args.repeats} alternating rounds; "
          f"best times {t_bare / t_ours:.3f}; target ≥ 0.9: {'met' if ratio >= 0.9 else 'MISSED'})")
    if args.random_llama:
        return

    from complaw import zoo

    items = zoo.task_items(args.task)[: args.items]
    zero_shot(model, tok, [args.task], limit=8, batch_size=16)  # warm-up: builds the task index once
    t_lm = best_of(lambda: zero_shot(model, tok, [args.task], limit=args.items, batch_size=16), 3)
    t_ll = best_of(lambda: bare_loglikelihood(model, tok, items, 16), 3)
    pairs = sum(len(it["choices"]) for it in items)
    print(f"\nzero-shot {args.task}: {len(items)} items, {pairs} (context, choice) pairs")
    print(f"{'bare log-likelihood scoring':<40}{t_ll:>9.3f}")
    print(f"{'complaw zero_shot via lm-eval':<40}{t_lm:>9.3f}")
    print(f"lm-eval overhead: {t_lm / t_ll:.2f}× the bare scoring time")


if __name__ == "__main__":
    main()
