"""The README is executable: every fenced ``bash`` and ``python`` block of README.md runs, top to bottom, and exits 0.

The blocks run in order in one working directory, as a reader would follow them after ``make demo``: each bash
block as one ``bash -e`` script with the package's environment, each python block with the package's Python. A
command too slow for the test suite is replaced by a quick equivalent from :data:`QUICK` — the same command
with a smaller budget — never skipped; every entry of :data:`QUICK` must still match the README (a stale entry
fails), and every other line runs exactly as written. ``yaml`` blocks are sweep specs: they must load.

The working directory gets its own ``COMPLAW_CACHE`` (so ``complaw zoo clear`` touches nothing of the user's);
the real model SmolLM2 is linked into it from the user's cache, fetched once per machine as the real-model tests
do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

#: The spec that stands in for `make demo`: the demo preset's shape (two Llama sizes, PruneNet and SliceGPT,
#: three ratios, two RFT budgets) on budgets that take about a minute. It is named demo, so its store and
#: report land where `make demo` puts them (complaw_results/results.db, reports/demo).
DEMO_SPEC = """\
name: demo
models: [zoo:llama-xs, zoo:llama-s]
methods: [prunenet, {name: slicegpt, options: {round_to: 1}}]
ratios: [0.2, 0.5, 0.8]
rft_samples: [0, 16]
rft: {seq_len: 64, batch_size: 8, lr: 2.0e-3}
eval: {seq_len: 64, max_blocks: 6, task_limit: 20}
runtime: {seq_len: 32, new_tokens: 4, repeats: 2}
threads: 2
laws: {bootstrap: 50}
"""

_SMALL_RUN = "--test-blocks 4 --task-limit 20 --no-runtime"
#: README text → its quick equivalent (same command, smaller budget). Applied to the block's text before it runs.
QUICK: dict[str, str] = {
    # `make test` is what runs this file: check the target exists and its recipe parses, without recursing.
    "make test ": "make -s -C \"$COMPLAW_REPO\" --dry-run test >/dev/null ",
    "make demo ": "complaw demo --preset readme-demo.yaml ",
    "complaw sweep demo ratios=[0.2,0.4,0.6] rft.lr=1e-3":
        "complaw sweep readme-demo.yaml ratios=[0.2,0.4,0.6] rft.lr=1e-3 rft_samples=[0] --no-report",
    "complaw run zoo:llama-m --method slicegpt --ratio 0.3 --rft-samples 64 --out record.json":
        f"complaw run zoo:llama-m --method slicegpt --ratio 0.3 --rft-samples 8 {_SMALL_RUN} --out record.json",
    "complaw run --config exp.yaml ratio=0.4 rft.rft_samples=32":
        f"complaw run --config exp.yaml ratio=0.4 rft.rft_samples=4 {_SMALL_RUN}",
    "complaw compress real:smollm2-135m --method prunenet --ratio 0.3 --out out/smol-pn30":
        "complaw compress real:smollm2-135m --method prunenet --ratio 0.3 --option episodes=3 --out out/smol-pn30",
    "complaw run real:smollm2-135m --method slicegpt --ratio 0.25 --test-data zoo:prose-test --rft-samples 64":
        "complaw run real:smollm2-135m --method slicegpt --ratio 0.25 --test-data zoo:prose-test --rft-samples 2 "
        "--seq-len 64 --test-blocks 2 --no-tasks --no-runtime --option calibration_samples=4 "
        "--option calibration_seqlen=256",
}


def blocks() -> list[tuple[int, str, str]]:
    """Every fenced block of README.md as (line, language, text), in order."""
    text = README.read_text()
    out = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        out.append((text[:m.start()].count("\n") + 1, m.group(1), m.group(2)))
    return out


def _quick(text: str) -> str:
    for slow, fast in QUICK.items():
        text = text.replace(slow, fast)
    return text


RUNNABLE = [b for b in blocks() if b[1] in ("bash", "python")]


def test_every_quick_equivalent_still_matches_the_readme():
    text = "\n".join(t for _, _, t in RUNNABLE)
    stale = [slow for slow in QUICK if slow not in text]
    assert not stale, f"QUICK entries no longer in README.md (update them): {stale}"


def test_every_block_is_runnable_or_a_spec():
    """A block without a language would escape this test: each is bash, python, yaml, or a plain listing."""
    for line, lang, text in blocks():
        if lang == "":
            assert not re.search(r"^\s*\$?\s*complaw ", text, flags=re.M), \
                f"README.md:{line}: an untagged block holds a command; tag it bash so that it is run"
        else:
            assert lang in ("bash", "python", "yaml"), f"README.md:{line}: block language {lang!r}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from complaw.zoo import real

    work = tmp_path_factory.mktemp("readme")
    (work / "readme-demo.yaml").write_text(DEMO_SPEC)
    cache = work / "cache"
    # SmolLM2 is fetched once per machine into the user's cache (as tests/test_real_models.py does), then linked.
    smol = real.get("smollm2-135m")
    real.fetch(smol.id, progress=False)
    (cache / "real").mkdir(parents=True)
    (cache / "real" / smol.name).symlink_to(smol.home, target_is_directory=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COMPLAW_CACHE": str(cache),
           "COMPLAW_REPO": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}
    yield work, env
    link = cache / "real" / smol.name
    if link.is_symlink():  # the link only: the user's cached model stays
        link.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("line, lang, text", RUNNABLE, ids=[f"README.md:{b[0]}-{b[1]}" for b in RUNNABLE])
def test_readme_block_runs(workdir, line, lang, text):
    work, env = workdir
    script = _quick(text)
    if lang == "bash":
        # -e: the first failing line stops the block; the trap names it (with the README line it came from).
        cmd = ["bash", "-c", "set -eo pipefail\ntrap 'echo \"FAILED: $BASH_COMMAND\" >&2' ERR\n" + script]
    else:
        cmd = [sys.executable, "-c", script]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (f"README.md:{line} ({lang} block) exited {proc.returncode}\n"
                                  f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-5000:]}")
    assert "Traceback" not in proc.stderr, proc.stderr[-5000:]


@pytest.mark.parametrize("line, text", [(b[0], b[2]) for b in blocks() if b[1] == "yaml"])
def test_readme_yaml_is_a_valid_sweep_spec(tmp_path, line, text, monkeypatch):
    from complaw.sweep.spec import load_spec

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(text)
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.name and spec.models and spec.ratios, f"README.md:{line}"
