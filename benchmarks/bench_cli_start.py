"""Wall time of the CLI's table commands and the import time of ``complaw.cli`` (target: under 2 s idle).

    python benchmarks/bench_cli_start.py [--rounds 5] [--before-src /path/to/old/src]

Runs ``complaw forms``, ``complaw critical`` (from parameters) and ``complaw fit`` on a 100-row CSV as fresh
processes, ``--rounds`` times each; with ``--before-src`` (the ``src`` directory of an older checkout, e.g.
``git archive 0856fee src | tar -x -C /tmp/before``) the old code runs too, interleaved round by round with
the current one so both see the same machine load. Prints min / median / max wall seconds per command, the
same for the CPU seconds (user + sys) of each process (on a shared machine the load inflates these less than
the wall time, but it does inflate them), the ``python -X importtime`` total of ``complaw.cli``, and which heavy
modules importing it loads. ``complaw fit`` loads statsmodels (its OLS, imported inside the fit); ``forms``
and ``critical`` from parameters do not.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from complaw.laws import simulate

HEAVY = ("torch", "transformers", "statsmodels", "matplotlib", "pandas", "scipy")


def commands(csv: Path) -> dict[str, list[str]]:
    return {
        "complaw forms": ["forms"],
        "complaw critical (parameters)": ["critical", "--alpha", "0.98", "--beta", "-1.18", "--gamma", "-0.14",
                                          "--sigma", "0.8", "--r", "0.1"],
        "complaw fit (100-row CSV)": ["fit", str(csv)],
    }


def env_for(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:  # an older checkout's src shadows the installed (editable) package
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wall(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + sys) of one fresh ``python -m complaw …`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "complaw", *argv], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_profile(env: dict[str, str]) -> tuple[float, list[str]]:
    """(cumulative import seconds of complaw.cli, heavy modules it loads)."""
    code = f"import sys, complaw.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True)
    cum = [int(m.group(1)) for m in re.finditer(r"\|\s*(\d+) \| complaw\.cli$", proc.stderr, re.M)]
    return (cum[-1] / 1e6 if cum else float("nan")), [m for m in proc.stdout.strip().split(",") if m]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before-src", default=None, help="src directory of the older code to compare with")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "t100.csv"
        df = simulate("sengupta2025", {"alpha": 0.98, "beta": -1.18, "gamma": -0.14},
                      ratios=(0.1, 0.3, 0.5, 0.7, 0.9), seed=0).assign(metric="avg_acc", method="prunenet")
        df.to_csv(csv, index=False)
        variants = {"after": None} if args.before_src is None else {"before": args.before_src, "after": None}
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        load_start = os.getloadavg()[0]
        for _ in range(args.rounds):  # interleaved: every variant and command once per round
            for label, argv in commands(csv).items():
                for variant, src in variants.items():
                    times.setdefault((label, variant), []).append(wall(argv, env_for(src)))
        print(f"load average (1 min) at the start {load_start:.2f}, at the end {os.getloadavg()[0]:.2f}; "
              f"{os.cpu_count()} CPUs; {args.rounds} rounds")
        for what, col in (("wall", 0), ("CPU", 1)):
            print(f"{'command':<32}" + "".join(f"{v + f' {what} min/median/max s':>32}" for v in variants))
            for label in commands(csv):
                cells = []
                for variant in variants:
                    t = [x[col] for x in times[(label, variant)]]
                    cells.append(f"{min(t):.2f} / {statistics.median(t):.2f} / {max(t):.2f}")
                print(f"{label:<32}" + "".join(f"{c:>32}" for c in cells))
        for variant, src in variants.items():
            secs, heavy = import_profile(env_for(src))
            loaded = ", ".join(heavy) or "none of " + "/".join(HEAVY)
            print(f"import complaw.cli ({variant}): {secs:.2f} s (-X importtime), loads: {loaded}")


if __name__ == "__main__":
    main()
