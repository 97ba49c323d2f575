"""Run the authors' reference PruneNet (LCS2-IIITD/PruneNet) unmodified on SmolLM2-135M, then score its
pruned model with complaw's loss — the "reference" rows of BENCHMARKS.md, "Calibration-free pruning on a
real LLM (#15)". Nothing of the reference is copied: it is imported from a checkout you name.

    $ git clone https://github.com/LCS2-IIITD/PruneNet /tmp/PruneNet        # @0b67c44 for the numbers here
    $ .venv/bin/python benchmarks/reference_prunenet.py --checkout /tmp/PruneNet --ratio 0.3 --seed 42

Shims, and why: the reference imports SliceGPT only for a logging helper and a device setting (stubbed);
it picks the architecture by a substring of the model name (so the checkpoint is linked under a name
containing "llama"); it hard-codes ``GradScaler("cuda")``, which on a CPU is disabled and lets one inf/NaN
step poison the policy, where on its GPU the scaler skips that step (so it gets the CPU scaler). Its
defaults are kept: 20 episodes, AdamW lr 1e-3, fp16 autocast, training at the target ratio, pruning with
the *final* policy state by multinomial sampling. Prints the per-episode mean reward (1/KS), the keep
probabilities α, the overlap of its kept neurons with the L2-magnitude top-k, and the test losses; writes
the kept indices to ``--out``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
import tempfile
import time
import types
from pathlib import Path

import torch


def import_reference(checkout: Path):
    sys.path.insert(0, str(checkout / "prunenet"))
    slicegpt, utils, config = (types.ModuleType(n) for n in ("slicegpt", "slicegpt.utils", "slicegpt.config"))
    utils.configure_logging = lambda **_: None
    config.config = types.SimpleNamespace(device=torch.device("cpu"))
    slicegpt.utils, slicegpt.config = utils, config
    sys.modules.update({"slicegpt": slicegpt, "slicegpt.utils": utils, "slicegpt.config": config})
    scaler = torch.amp.GradScaler
    torch.amp.GradScaler = lambda device="cuda", *a, **k: scaler("cpu", *a, **k)
    import prunenet as ref  # noqa: PLC0415 — the reference script, as a module
    import prunenet_utils as ref_utils  # noqa: PLC0415

    return ref, ref_utils


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True, help="a clone of LCS2-IIITD/PruneNet")
    ap.add_argument("--model", default="real:smollm2-135m")
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--blocks", type=int, default=32)
    ap.add_argument("--out", type=Path, default=None, help="JSON with kept indices, rewards, α (default: a temp file)")
    args = ap.parse_args()

    from transformers import AutoModel

    import complaw
    from complaw.compress.ffn import magnitude_scores, slice_ffn_rows, topk_indices
    from complaw.evaluate import lm_loss
    from complaw.models.adapters import get_adapter
    from complaw.models.io import resolve_model_id
    from complaw.textdata import load_texts, token_blocks

    ref, ref_utils = import_reference(args.checkout)
    work = Path(tempfile.mkdtemp())
    name = str(work / "smollm2-llama")
    Path(name).symlink_to(Path(resolve_model_id(args.model)))
    log = io.StringIO()
    logging.basicConfig(stream=log, level=logging.INFO, force=True)
    ns = argparse.Namespace(model_name=name, seed=args.seed, compression_ratio=args.ratio, num_episodes=20,
                            learning_rate_action=0.001, use_kld=False, save_dir=str(work / "out"), device="cpu")
    ref.process_prunenet_args(ns)
    ref_utils._set_seed(ns.seed)
    backbone = AutoModel.from_pretrained(name, dtype=torch.float32).eval()
    layers = ref_utils._get_all_layers(name, backbone)
    originals = [ref_utils._get_layer_weight(name, layer).clone() for layer in layers]
    action = ref_utils._get_action_model(name, backbone.config)
    svds = {i: torch.svd(w.float())[1] for i, w in enumerate(originals)}
    start = time.perf_counter()
    ref._training(ns, backbone, action, svds, str(work / "action.ckpt"))
    train_s = time.perf_counter() - start
    action.eval()
    alphas = []
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.float16):
        for w in originals:
            action(w)
            alphas.append(action.alpha.float())
    ref._prune_model(ns, backbone, action)
    kept = [[int((w0 == row).all(dim=1).nonzero()[0]) for row in ref_utils._get_layer_weight(name, layer)]
            for w0, layer in zip(originals, layers, strict=True)]
    rewards = [float(x) for x in re.findall(r"Avg\. reward: ([0-9.eE+-]+)", log.getvalue())]

    model = complaw.load(args.model, dtype=torch.float32).eval()
    tok = complaw.load_tokenizer(args.model)
    adapter = get_adapter(model)
    k, n = len(kept[0]), model.config.intermediate_size
    overlap = sum(len(set(topk_indices(magnitude_scores(*adapter.mlp_linears(layer)), k).tolist()) & set(idx)) / k
                  for layer, idx in zip(adapter.layers_of(model), kept, strict=True)) / len(kept)
    slice_ffn_rows(model, [torch.tensor(sorted(idx)) for idx in kept])
    loss = {s: lm_loss(model, token_blocks(load_texts(s), tok, 128, max_blocks=args.blocks)).loss
            for s in ("zoo:test", "zoo:prose-test")}
    a = torch.cat(alphas)
    print(f"reference PruneNet, r = {args.ratio}, seed {args.seed}: train {train_s:.0f} s; mean reward per episode "
          f"{rewards[0]:.2f} → {rewards[-1]:.2f} (max {max(rewards):.2f}); α min / median / max "
          f"{a.min():.2e} / {a.median():.3f} / {a.max():.3f}, saturated (> 0.999) {a.gt(0.999).float().mean():.3f}; "
          f"overlap with L2-magnitude top-k {overlap:.3f} (random: {k / n:.3f}); "
          f"loss code {loss['zoo:test']:.4f}, prose {loss['zoo:prose-test']:.4f}")
    out = args.out or work / "reference.json"
    out.write_text(json.dumps({"ratio": args.ratio, "seed": args.seed, "train_s": train_s, "rewards": rewards,
                               "kept": kept, "loss": loss, "overlap_magnitude": overlap}))
    print(f"kept indices: {out}")


if __name__ == "__main__":
    main()
