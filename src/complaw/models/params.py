"""Model helpers every stage uses: the parameter count (tied weights once) and a cheap fingerprint of weights."""

from __future__ import annotations

import hashlib

from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def tensor_fingerprint(tensors, salt: str = "") -> str:
    """A short hash of tensors: their shapes, a strided sample of ~64k values each and their row sums.

    Two different checkpoints (even a fine-tune of one another) do not collide, while hashing a 7B
    model stays cheap. Methods use it to key in-memory caches (a PruneNet policy, ShortGPT block
    influences) so that a sweep over ratios does the ratio-independent work once.
    """
    h = hashlib.sha256(salt.encode())
    for t in tensors:
        flat = t.detach().flatten()
        step = max(1, flat.numel() // 65536)
        h.update(str(tuple(t.shape)).encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
        rows = t.detach().float().reshape(t.shape[0], -1) if t.dim() else t.detach().float().reshape(1, 1)
        h.update(rows.sum(dim=1).cpu().numpy().tobytes())
    return h.hexdigest()[:16]
