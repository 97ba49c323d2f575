"""The CLI is a small entry point: table commands import neither torch nor transformers (#13).

Importing the CLI, ``forms`` and ``critical`` load no statsmodels either; the commands that fit a law
(``fit``, ``validate``, ``report``) import it inside the fit, as the OLS engine. Each check runs in a fresh
interpreter, since this test process has long imported torch (conftest).
"""

import json
import os
import subprocess
import sys

import pytest

from complaw.laws import simulate

HEAVY = ("torch", "transformers", "peft", "lm_eval", "statsmodels")

PROBE = f"""
import json, sys
from complaw.cli import main
code = main(sys.argv[1:]) if len(sys.argv) > 1 else 0
print(json.dumps({{"code": code, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def probe(*argv: str, preload: str = "") -> dict:
    code = (f"import {preload}\n" if preload else "") + PROBE
    # without the test plugins (conftest): the CLI's own imports, not those of a plugin that uses torch
    env = {k: v for k, v in os.environ.items() if k != "COMPLAW_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    df = simulate("sengupta2025", {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}, ratios=(0.1, 0.3, 0.5, 0.7, 0.9))
    df["metric"], df["method"] = "avg_acc", "prunenet"
    path = tmp_path_factory.mktemp("fast") / "t100.csv"
    df.to_csv(path, index=False)
    assert len(df) == 100
    return path


def test_importing_the_cli_loads_no_model_code():
    assert probe() == {"code": 0, "loaded": []}
    assert "torch" in probe(preload="torch")["loaded"]  # the probe does see a loaded torch


def test_forms_and_critical_load_no_model_code():
    assert probe("forms") == {"code": 0, "loaded": []}
    assert probe("critical", "--alpha", "0.98", "--beta", "-1.18", "--gamma", "-0.14", "--r", "0.1") == \
        {"code": 0, "loaded": []}


def test_table_commands_load_no_model_code(table, tmp_path):
    # these fit laws, so statsmodels (the OLS engine) is loaded — and nothing heavier
    fits = {"code": 0, "loaded": ["statsmodels"]}
    assert probe("fit", str(table), "--bootstrap", "50") == fits
    assert probe("validate", str(table), "--scheme", "leave-one-ratio-out") == fits
    assert probe("report", str(table), "--out", str(tmp_path / "rep"), "--bootstrap", "20", "--no-figures") == fits
