"""Peak memory of recovery fine-tuning on a real model: HF's one-piece loss vs complaw's chunked loss.

Each measurement runs in a fresh process (peak RSS is per process): load the model in float32, touch its
weights with one forward, then ``recover(D)``; the peak RSS above the loaded model is reported, with the
loss curve's last value (the two losses agree to float rounding). Runs alternate (hf, chunked, hf, …) so
that load from neighbours hits both alike.

    .venv/bin/python benchmarks/bench_memory.py --model real:smollm2-135m --samples 64 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import torch
from complaw.evaluate.memory import current_rss_bytes, limit_allocator_caching
from complaw.models.io import load, load_tokenizer
from complaw.recover import RFTConfig, recover
import complaw.recover as rc

model_id, samples, which = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(int(sys.argv[4]))
limit_allocator_caching()
if which == "hf":
    rc.causal_lm_loss = lambda m, x, **kw: m(input_ids=x, labels=x, **kw).loss
tok = load_tokenizer(model_id)
model = load(model_id, dtype=torch.float32)
with torch.inference_mode():
    model(input_ids=torch.ones(1, 8, dtype=torch.long))
loaded = current_rss_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.process_time()
_, rec = recover(model, tok, RFTConfig(rft_samples=samples, seq_len=128, batch_size=8))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"loaded": loaded, "peak": peak, "peak_before_rft": before, "cpu_s": time.process_time() - t,
                  "final_loss": rec.final_loss, "steps": rec.steps}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="real:smollm2-135m")
    ap.add_argument("--samples", type=int, default=64, help="D: RFT samples of 128 tokens (batch 8)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating (hf, chunked) pairs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    runs: dict[str, list[dict]] = {"hf": [], "chunked": []}
    for i in range(args.rounds):
        for which in (("hf", "chunked") if i % 2 == 0 else ("chunked", "hf")):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.samples), which,
                                  str(args.threads)], capture_output=True, text=True, env=env, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res["wall_s"] = time.perf_counter() - t
            runs[which].append(res)
            mib = 2 ** 20
            print(f"round {i} {which:8s} loaded {res['loaded'] / mib:7.0f} MiB  peak {res['peak'] / mib:7.0f} MiB  "
                  f"RFT above loaded {(res['peak'] - res['loaded']) / mib:6.0f} MiB  final loss {res['final_loss']:.6f}  "
                  f"CPU {res['cpu_s']:.1f} s", flush=True)
    for which, rs in runs.items():
        above = sorted((r["peak"] - r["loaded"]) / 2 ** 20 for r in rs)
        peaks = sorted(r["peak"] / 2 ** 20 for r in rs)
        cpu = sorted(r["cpu_s"] for r in rs)
        print(f"{which:8s} peak RSS {peaks[0]:.0f}–{peaks[-1]:.0f} MiB; RFT above the loaded model "
              f"{above[0]:.0f}–{above[-1]:.0f} MiB; RFT CPU time {cpu[0]:.1f}–{cpu[-1]:.1f} s")
    hf, ch = runs["hf"], runs["chunked"]
    ratio = [(a["peak"] - a["loaded"]) / (b["peak"] - b["loaded"]) for a, b in zip(hf, ch, strict=True)]
    print(f"RFT memory above the model, hf / chunked: {min(ratio):.2f}–{max(ratio):.2f}×; "
          f"final losses {[round(r['final_loss'], 6) for r in hf]} vs {[round(r['final_loss'], 6) for r in ch]}")


if __name__ == "__main__":
    main()
