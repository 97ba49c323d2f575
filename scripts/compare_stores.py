"""Compare the records of two results stores, timings aside: the check that a refactor changed no result.

    python scripts/compare_stores.py BEFORE.db AFTER.db

Both stores are opened read-only (an old store's field names are read as today's). Every record is matched by
its config hash; the fields that measure time or the machine (timings, runtime, latencies, throughput, memory,
dates, versions) are left out, everything else must be equal: status, every metric, the compression record
(params, param_reduction, kept rows, details), the RFT record (loss curve). Prints the differences; exit 1 when
there are any.
"""

from __future__ import annotations

import sys

from complaw.compress.registry import RUNTIME_OPTIONS
from complaw.sweep.store import ResultStore

#: Keys that measure time, the machine or the moment, not the result.
NOT_RESULTS = {"timings_s", "runtime", "base_latency_s", "prefill_latency_s", "decode_tokens_per_s", "wall_time_s",
               "peak_rss_bytes", "peak_rss_exact", "start_rss_bytes", "cuda_max_allocated_bytes", "started_at",
               "finished_at", "versions", "git_revision", "timings", "prune_time_s", "policy_train_time_s",
               "policy_source", "time_s", "seconds", "flops_per_token"}


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items()
                if k not in NOT_RESULTS and not k.endswith(("_time_s", "_s_per_episode"))}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'after' if k in b else 'before'}")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} → {b!r}"]


def main(before: str, after: str) -> int:
    stores = []
    for path in (before, after):
        with ResultStore(path, readonly=True) as st:
            stores.append({r.config_hash: r.model_dump(mode="json") for r in st.records()})
    a, b = stores
    problems = [f"only in before: {h}" for h in sorted(set(a) - set(b))]
    problems += [f"only in after: {h}" for h in sorted(set(b) - set(a))]
    for h in sorted(set(a) & set(b)):
        # the compression record now holds every option as resolved, and no run-time objects (the tokenizer):
        # compare the settings the old one held
        old_opts = {k: v for k, v in (a[h].get("compression") or {}).get("options", {}).items()
                    if k not in RUNTIME_OPTIONS}
        if a[h].get("compression"):
            a[h]["compression"]["options"] = old_opts
        if b[h].get("compression"):
            b[h]["compression"]["options"] = {k: v for k, v in b[h]["compression"]["options"].items() if k in old_opts}
        x, y = strip(a[h]), strip(b[h])
        problems += [f"{h} ({a[h]['config']['method']} r={a[h]['config']['ratio']}){d}" for d in diff(x, y)]
    print(f"{len(set(a) & set(b))} records matched by config hash ({len(a)} before, {len(b)} after); "
          f"{len(problems)} differences outside timings")
    for line in problems[:50]:
        print(" ", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
