"""Hostile values (#26): every sweep-spec, config and method-option value is checked — type, range, size —
before any model is loaded or any file (store, report, -wal/-shm) is written.

Each row is (command line, message fragment), as in test_hostile_cli.py: the command must exit 2 with one
``error:`` line naming the input, no traceback, and leave the test's directory as it was (no store, no
``-wal``/``-shm``, no report). A line is split on spaces; a row given as a list is the argv itself (values
with spaces). ``{spec}``, ``{model}``, ``{tmp}`` are filled in per test. No model is loaded by any row.
"""

from __future__ import annotations

import pytest
import yaml
from tests.hostile import refused, tree

from complaw.cli import main

BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x]"]
                 + [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefg", "bcdefgh", strict=True)])


@pytest.fixture
def files(tmp_path, tiny):
    spec = {"name": "t", "models": [str(tiny / "model")], "methods": ["random-ffn"], "ratios": [0.25],
            "rft_samples": [0], "threads": 1,
            "rft": {"seq_len": 32, "dataset": str(tiny / "train.txt"), "batch_size": 4},
            "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 4, "tasks": []},
            "runtime": {"enabled": False}, "store": str(tmp_path / "results.db"), "report": str(tmp_path / "report")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "deep.yaml").write_text("name: " + "[" * 50_000 + "]" * 50_000 + "\n")
    (tmp_path / "bomb.yaml").write_text(BOMB + "\nname: *h\n")  # 9**8 values once expanded
    (tmp_path / "loop.yaml").write_text("models: &m [zoo:llama-xs, *m]\nmethods: [random-ffn]\nratios: [0.1]\n")
    (tmp_path / "big.yaml").write_text("# padding\n" * 120_000 + yaml.safe_dump(spec))
    (tmp_path / "exp.yaml").write_text("model: " + "[" * 50_000 + "]" * 50_000 + "\n")
    return {"spec": str(tmp_path / "spec.yaml"), "model": str(tiny / "model"), "tmp": str(tmp_path)}


SEEDS = "seeds=[" + ",".join(map(str, range(400))) + "]"
RATIOS = "ratios=[" + ",".join(f"{i / 1000:g}" for i in range(1, 400)) + "]"

CATALOGUE = [
    # YAML bounded before objects are built: depth, alias expansion, self-reference, size, huge integers
    ("sweep {tmp}/deep.yaml", "deep.yaml: nested more than 64 levels deep"),
    ("sweep {tmp}/bomb.yaml", "bomb.yaml: holds more than 100,000 values with its aliases expanded"),
    ("sweep {tmp}/loop.yaml", "loop.yaml: the alias *m refers to a value that contains it"),
    ("sweep {tmp}/big.yaml", "big.yaml: 1,2"),
    (["sweep", "{spec}", "ratios=&a [0.1]", "seeds=*a"], "override 'seeds=*a': uses the alias *a"),
    (["sweep", "{spec}", "eval.tasks=[&x a, *x]"], "anchors and aliases are not accepted"),
    ("sweep {spec} ratios=[" + "1" * 5000 + "]", "a value cannot be read (Exceeds the limit"),
    ("sweep {spec} ratios=" + "[" * 70 + "]" * 70, "nested more than 64 levels deep"),
    ("run --config {tmp}/exp.yaml", "exp.yaml: nested more than 64 levels deep"),
    # the spec's own values: pydantic errors as one line naming the key, bounds that say why
    ("sweep {spec} seeds=[1099511627776]", "seeds: seed 1099511627776: must lie in [0, 4294967295]"),
    ("sweep {spec} seeds=[-1]", "seeds: seed -1: must lie in [0, 4294967295]"),
    ("sweep {spec} threads=1000000", "threads 1000000: must lie in [1, "),
    ("sweep {spec} laws.bootstrap=1000000000", "laws.bootstrap 1000000000: must lie in [0, 100000]"),
    ("sweep {spec} laws.forms=[bogus]", "laws.forms: form 'bogus': unknown law form"),
    ("sweep {spec} laws.forms=[]", "laws.forms: empty"),
    ("sweep {spec} laws.forms=[talk,talk]", "law form 'talk' is listed twice"),
    ("sweep {spec} laws.sigmas=[2]", "laws.sigmas: sigma 2: must lie in (0, 1)"),
    ("sweep {spec} laws.d_scale=.inf", "laws.d_scale inf: must be a finite number"),
    (["sweep", "{spec}", "methods=[{{name: random-ffn, options: {{round_to: -1}}}}]"],
     "methods: random-ffn: option round_to=-1: must lie in [1, 65536]"),
    (["sweep", "{spec}", "methods=[{{name: prunenet, options: {{episodes: 1000000000}}}}]"],
     "option episodes=1000000000: must lie in [1, 1000]; REINFORCE episodes"),
    (["sweep", "{spec}", "methods=[{{name: prunenet, options: {{lr: .nan}}}}]"], "option lr=nan: must be a finite number"),
    ("sweep {spec} methods=[nosuch]", "methods: method 'nosuch': unknown compression method"),
    ("sweep {spec} rft_samples=[1000000000000]", "rft_samples: D 1000000000000: must lie in [0, 10000000]"),
    ("sweep {spec} rft_samples=[0,100000]", "rft samples 100000: dataset"),  # checked against the data
    ("sweep {spec} models=['']", "models: empty model name ''"),
    ("sweep {spec} name=''", "name '': give the sweep a name"),
    ("sweep {spec} ratios=[.nan]", "ratios: ratio nan outside [0, 1)"),
    ("sweep {spec} cpus_per_unit=.inf", "cpus_per_unit inf: must be a finite number"),
    ("sweep {spec} gpus_per_unit=-1", "gpus_per_unit"),
    ("sweep {spec} rft.lr=1e300", "rft.lr 1e+300: must lie in (0, 1]"),
    ("sweep {spec} rft.lr=.nan", "rft.lr"),
    ("sweep {spec} rft.rank=100000", "rft.rank 100000: must lie in [1, 4096]"),
    ("sweep {spec} rft.epochs=1000000", "rft.epochs 1000000: must lie in [1, 1000]"),
    ("sweep {spec} rft.target_modules=[]", "rft.target_modules []: names no module"),
    ("sweep {spec} rft.max_grad_norm=.inf", "rft.max_grad_norm: Input should be a finite number (got inf)"),
    ("sweep {spec} eval.seq_len=1000000000", "eval.seq_len 1000000000: must lie in [2, 131072]"),
    ("sweep {spec} eval.max_blocks=1000000000", "eval.max_blocks 1000000000: must lie in [1, 1000000]"),
    ("sweep {spec} eval.task_limit=1000000000", "eval.task_limit 1000000000"),
    ("sweep {spec} eval.tasks=['']", "eval.tasks: an empty name"),
    ("sweep {spec} eval.test_data=''", "eval.test_data '': empty"),
    ("sweep {spec} runtime.repeats=1000000000", "runtime.repeats 1000000000: must lie in [1, 1000]"),
    ("sweep {spec} runtime.new_tokens=100000000", "runtime.new_tokens 100000000: must lie in [1, 4096]"),
    ("sweep {spec} runtime.batch_size=100000", "runtime.batch_size 100000"),
    ("sweep {spec} runtime.noisy_dispersion=.inf", "runtime.noisy_dispersion inf"),
    ("sweep {spec} " + SEEDS + " " + RATIOS, "159,600 experiments"),
    # method options (complaw compress): bounds with the reason, finite floats, bounded parsing
    ("compress {model} --method prunenet --ratio 0.3 --option episodes=1000000000",
     "option episodes=1000000000: must lie in [1, 1000]; REINFORCE episodes"),
    ("compress {model} --method prunenet --ratio 0.3 --option lr=NaN", "option lr=nan: must be a finite number"),
    ("compress {model} --method prunenet --ratio 0.3 --option draws=1000", "option draws=1000: must lie in [1, 64]"),
    ("compress {model} --method random-ffn --ratio 0.3 --option round_to=0", "option round_to=0: must lie in [1,"),
    ("compress {model} --method rtn-int8 --ratio 0.3 --option group_size=0", "option group_size=0: must lie in"),
    ("compress {model} --method layer-drop --ratio 0.3 --option max_batches=100000000",
     "option max_batches=100000000"),
    ("compress {model} --method slicegpt --ratio 0.3 --option calibration_samples=100000000",
     "option calibration_samples=100000000: must lie in [1, 10000]"),
    ("compress {model} --method prunenet --ratio 0.3 --option episodes=" + "[" * 100 + "]" * 100,
     "nested more than 64 levels deep"),
    ("compress {model} --method prunenet --ratio 0.3 --option episodes=" + "1" * 5000, "the value cannot be read"),
    ("compress {model} --method prunenet --ratio 0.3 --option episodes=" + "x" * 70_000, "more than 65,536"),
    ("compress {model} --method prunenet --ratio 0.3 --option selection=bogus",
     "option selection='bogus': must be one of sample, topk"),
    ("compress {model} --method prunenet --ratio 0.3 --option advantage=normalized", "needs at least 2 draws"),
    ("compress {model} --method slicegpt --ratio 0.3 --option rotation=bogus", "option rotation='bogus'"),
    ("compress {model} --method slicegpt --ratio 0.3 --option device=bogus", "option device='bogus': not a device"),
    # complaw run: flags and overrides
    ("run {model} --method random-ffn --seq-len 1000000000", "--seq-len 1000000000: must lie in [2, 131072]"),
    ("run {model} --method random-ffn --test-blocks 1000000000", "--test-blocks 1000000000: must lie in [1, 1000000]"),
    ("run {model} --method random-ffn --rft-rank 100000", "--rft-rank 100000: must lie in [1, 4096]"),
    ("run {model} --method random-ffn --rft-lr 1e300", "--rft-lr 1e+300: must lie in (0, 1]"),
    ("run {model} --method random-ffn --rft-lr nan", "--rft-lr"),
    ("run {model} --method random-ffn --ratio nan", "--ratio: Input should be a finite number"),
    ("run {model} --method random-ffn --rft-samples 1000000000000", "--rft-samples 1000000000000: must lie in [0,"),
    ("run {model} --method random-ffn rft.epochs=1000000", "rft.epochs 1000000: must lie in [1, 1000]"),
    ("run {model} --method random-ffn rft.seed=-1", "-1: must lie in [0, 4294967295]"),
    ("run {model} --method random-ffn runtime.repeats=1000000000", "runtime.repeats 1000000000"),
    ("run {model} --method random-ffn method_options.round_to=-1", "option round_to=-1: must lie in [1,"),
    ("run {model} --method prunenet --option episodes=1000000000", "option episodes=1000000000"),
    (["run", "{model}", "eval.tasks=[&x a, *x]"], "anchors and aliases are not accepted"),
    (["run", ""], "model '': empty model name"),
]


def _argv(line, files) -> list[str]:
    return [a.format(**files) for a in (line if isinstance(line, list) else line.split(" "))]


@pytest.mark.parametrize("line, fragment", CATALOGUE,
                         ids=[(" ".join(c[0]) if isinstance(c[0], list) else c[0])[:80] for c in CATALOGUE])
def test_bad_value_is_one_line_exit_2_and_nothing_written(files, line, fragment, capsys, monkeypatch):
    monkeypatch.chdir(files["tmp"])
    before = tree(files["tmp"])
    line_ = refused(capsys, main(_argv(line, files)), fragment.format(**files))
    assert len(line_) < 600
    assert tree(files["tmp"]) == before  # no store, no -wal/-shm, no report, nothing changed


def test_the_good_spec_and_yaml_anchors_still_load(files):
    from complaw.config import load_yaml
    from complaw.sweep import load_spec

    spec = load_spec(files["spec"], ["methods=[{name: random-ffn, options: {round_to: 8}}]"])
    assert spec.methods[0].options == {"round_to": 8}
    assert load_yaml("a: &s {b: 1}\nc: *s\nd: {<<: *s, e: 2}", "t") == {"a": {"b": 1}, "c": {"b": 1},
                                                                        "d": {"b": 1, "e": 2}}
    for preset in ("quick", "demo", "real-quick", "real"):
        assert load_spec(preset).name


def test_every_builtin_numeric_option_has_a_bound_and_its_default_lies_inside():
    from complaw.checks import bounded
    from complaw.compress import available_methods

    for name, spec in available_methods().items():
        if not spec.fn.__module__.startswith("complaw."):
            continue  # a plugin's (tests/plugins) options are its own business
        for key, f in spec.options.model_fields.items():
            if f.annotation in (int, float, int | None, float | None) and key not in ("seed",):
                assert key in spec.bounds, (name, key)
            if key in spec.bounds and f.default is not None:
                bounded(f.default, key, spec.bounds[key])
        if spec.bounds:
            assert any("range" in r["help"] for r in spec.option_rows())
