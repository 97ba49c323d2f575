"""SliceGPT: compression wall time vs its floor, peak memory, and the forward speedup of the sliced model.

    python benchmarks/bench_slicegpt.py                       # random-init ~110M Llama, ratios 0.25 0.5
    python benchmarks/bench_slicegpt.py --quality zoo:llama-m # loss vs ratio, PCA vs random rotation

Speed mode builds a randomly initialised Llama (hidden 768, 12 layers, FFN 2048, vocab 16000, untied,
~110M parameters): its weights are random, so only the timings mean something. Measured in one run:

* floor = one dense calibration forward pass (backbone, same batches) + the float64 ``eigh`` of the
  2L+1 D x D matrices SliceGPT decomposes; the compression's own wall time is reported against it;
* peak RSS during the compression above the RSS before it (Linux VmHWM, reset per ratio through
  /proc/self/clear_refs), next to the size of one layer and of the calibration activations;
* forward time of the dense and sliced models (full causal LM, logits included), runs interleaved across
  the models, min CPU seconds, min and median wall seconds of ``--repeats``.

Everything is timed in CPU seconds of this process as well as wall seconds: on a shared machine other
jobs inflate wall time, while with one torch thread (``--threads 1``) CPU time stays stable.

Quality mode slices a trained model at several ratios with PCA and with random orthogonal rotations
(the ablation) and reports test loss and the measured parameter reduction.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings
from pathlib import Path

import torch

from complaw.compress import compress


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def random_llama(seed: int = 0):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                         num_key_value_heads=12, vocab_size=16000, max_position_embeddings=2048,
                         tie_word_embeddings=False)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


class Clock:
    """Wall and CPU seconds of a block. With one torch thread the CPU time of this process is a stable
    measure on a shared machine, where other jobs inflate wall time."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def latencies(models: list, ids: torch.Tensor, repeats: int) -> list[dict[str, float]]:
    """Min wall / min CPU / median wall forward seconds per model, runs interleaved across the models."""
    walls: list[list[float]] = [[] for _ in models]
    cpus: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for model in models:
            model(ids)  # warm-up
        for _ in range(repeats):
            for i, model in enumerate(models):
                with Clock() as c:
                    model(ids)
                walls[i].append(c.wall)
                cpus[i].append(c.cpu)
    return [{"wall": min(w), "cpu": min(c), "median": statistics.median(w)} for w, c in zip(walls, cpus, strict=True)]


def speed(args) -> list[str]:
    dense = random_llama()
    config = dense.config
    n_params = sum(p.numel() for p in dense.parameters())
    d, n_layers = config.hidden_size, config.num_hidden_layers
    gen = torch.Generator().manual_seed(1)
    calib = torch.randint(0, config.vocab_size, (args.samples, args.seqlen), generator=gen)

    # Floor, part 1: one dense forward over the same calibration batches (backbone: SliceGPT never needs logits).
    with torch.inference_mode(), Clock() as fwd:
        for i in range(0, args.samples, args.batch_size):
            dense.model(input_ids=calib[i:i + args.batch_size], use_cache=False)
    # Floor, part 2: 2L+1 float64 eigendecompositions of D x D symmetric matrices.
    a = torch.randn(d, d, dtype=torch.float64, generator=gen)
    h = a @ a.T
    with Clock() as eig:
        for _ in range(2 * n_layers + 1):
            torch.linalg.eigh(h)
    floor_cpu, floor_wall = fwd.cpu + eig.cpu, fwd.wall + eig.wall

    layer_mib = sum(p.numel() * p.element_size() for p in dense.model.layers[0].parameters()) / 2**20
    model_mib = sum(p.numel() * p.element_size() for p in dense.parameters()) / 2**20
    act_mib = args.samples * args.seqlen * d * 4 / 2**20
    lat_shapes = [(1, 128), (8, 128)]
    lat_ids = {s: torch.randint(0, config.vocab_size, s, generator=gen) for s in lat_shapes}

    rows, sliced = [], []
    for ratio in args.ratios:
        model = copy.deepcopy(dense)
        rss0 = _rss_kib("VmRSS")
        peak_ok = _reset_peak()
        with warnings.catch_warnings(), Clock() as c:
            warnings.simplefilter("ignore")
            model, record = compress(model, "slicegpt", ratio, calibration=calib, calibration_samples=args.samples,
                                     calibration_seqlen=args.seqlen, calibration_batch_size=args.batch_size)
        peak_mib = (_rss_kib("VmHWM") - rss0) / 1024 if peak_ok else float("nan")
        rows.append((ratio, record, c, peak_mib))
        sliced.append(model)
    # lat[shape][0] is the dense model, then one entry per ratio
    lat = {s: latencies([dense, *sliced], ids, args.repeats) for s, ids in lat_ids.items()}

    malloc = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    out = [
        f"Model: random-init Llama, {n_params / 1e6:.1f}M params (hidden {d}, {n_layers} layers, FFN "
        f"{config.intermediate_size}, vocab {config.vocab_size}, fp32, {model_mib:.0f} MiB; random weights: "
        f"timings only). Calibration {args.samples} x {args.seqlen} tokens, batch {args.batch_size}. "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine: CPU seconds are the stable numbers)"
        + (f", MALLOC_MMAP_THRESHOLD_={malloc}" if malloc else "") + ".",
        "",
        f"Floor (same run): dense calibration forward {fwd.cpu:.1f} s CPU ({fwd.wall:.1f} s wall) + "
        f"{2 * n_layers + 1} float64 eigh of {d}x{d} {eig.cpu:.1f} s CPU ({eig.wall:.1f} s wall) = "
        f"**{floor_cpu:.1f} s CPU** ({floor_wall:.1f} s wall). One layer = {layer_mib:.1f} MiB; one calibration "
        f"signal ({args.samples}x{args.seqlen}x{d} fp32) = {act_mib:.1f} MiB.",
        "",
        "| ratio | k | param_reduction | compress CPU s (wall s) | CPU x floor | peak RSS above start MiB "
        "| forward 1x128 dense -> sliced, CPU s (speedup) | forward 8x128 dense -> sliced, CPU s (speedup) "
        "| speedup by min wall / median wall, 1x128; 8x128 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for j, (ratio, record, c, peak_mib) in enumerate(rows, start=1):
        cells = [f"{ratio:.2f}", str(record.details["kept_hidden"]), f"{record.param_reduction:.3f}",
                 f"{c.cpu:.1f} ({c.wall:.1f})", f"{c.cpu / floor_cpu:.2f}", f"{peak_mib:.0f}"]
        for s in lat_shapes:
            dn, sl = lat[s][0], lat[s][j]
            cells.append(f"{dn['cpu']:.3f} -> {sl['cpu']:.3f} ({dn['cpu'] / sl['cpu']:.2f}x)")
        cells.append("; ".join(f"{lat[s][0]['wall'] / lat[s][j]['wall']:.2f}x / "
                               f"{lat[s][0]['median'] / lat[s][j]['median']:.2f}x" for s in lat_shapes))
        out.append("| " + " | ".join(cells) + " |")
    return out


def quality(args) -> list[str]:
    from complaw.models.io import load
    from complaw.zoo import load_split
    from complaw.zoo.lm import mean_loss, token_blocks

    base = load(args.quality)
    from transformers import AutoTokenizer

    from complaw.models.io import resolve_model_id

    tok = AutoTokenizer.from_pretrained(resolve_model_id(args.quality))
    blocks = token_blocks(tok, load_split("test"), seq_len=args.seqlen)
    blocks = (blocks[0][: args.eval_blocks], blocks[1][: args.eval_blocks])
    dense_loss = mean_loss(base, blocks)
    n_params = sum(p.numel() for p in {id(p): p for p in base.parameters()}.values())
    out = [
        f"Model: {args.quality} ({base.config.model_type}, hidden {base.config.hidden_size}, "
        f"{base.config.num_hidden_layers} layers, {n_params / 1e6:.2f}M params, tied="
        f"{base.config.tie_word_embeddings}). Calibration: zoo calibration split, {args.samples} x {args.seqlen} "
        f"tokens; test loss on the first {len(blocks[0])} blocks of {args.seqlen} tokens of the zoo test split. "
        f"Dense test loss {dense_loss:.4f}.",
        "",
        "| ratio | k | param_reduction | test loss PCA | test loss random rotation | wall s (PCA) |",
        "|---|---|---|---|---|---|",
    ]
    for ratio in args.ratios:
        losses, rec = {}, None
        for rotation in ("pca", "random"):
            model = copy.deepcopy(base)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, record = compress(model, "slicegpt", ratio, tokenizer=tok, rotation=rotation,
                                         calibration_samples=args.samples, calibration_seqlen=args.seqlen,
                                         calibration_batch_size=args.batch_size)
            losses[rotation] = mean_loss(model, blocks)
            rec = record if rotation == "pca" else rec
        out.append(f"| {ratio:.2f} | {rec.details['kept_hidden']} | {rec.param_reduction:.3f} | "
                   f"{losses['pca']:.4f} | {losses['random']:.4f} | {rec.wall_time_s:.2f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=None)
    ap.add_argument("--samples", type=int, default=16, help="calibration sequences N")
    ap.add_argument("--seqlen", type=int, default=256, help="calibration sequence length T")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5, help="timed forward passes per model and shape")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quality", default=None, help="a trained model (e.g. zoo:llama-m): loss vs ratio, PCA vs random")
    ap.add_argument("--eval-blocks", type=int, default=64)
    ap.add_argument("--write", action="store_true", help="append the result to BENCHMARKS.md")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ratios is None:
        args.ratios = [0.1, 0.2, 0.3, 0.4, 0.5] if args.quality else [0.25, 0.5]
    lines = quality(args) if args.quality else speed(args)
    import sys

    env = f"MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']} " if "MALLOC_MMAP_THRESHOLD_" in os.environ else ""
    command = env + "python benchmarks/bench_slicegpt.py " + " ".join(a for a in sys.argv[1:] if a != "--write")
    text = "\n".join([f"Command: `{command.strip()}`", "", *lines, ""])
    print(text)
    if args.write:
        path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
        existing = path.read_text() if path.exists() else "# Benchmarks\n"
        heading = "## SliceGPT (bench_slicegpt.py)"
        block = text if heading in existing else f"{heading}\n\n{text}"
        with path.open("a") as f:  # append only: other sections of the file belong to other benchmarks
            f.write(("\n" if existing.endswith("\n") else "\n\n") + block)


if __name__ == "__main__":
    main()
