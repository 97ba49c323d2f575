"""``complaw run`` as the README shows it: the summary prints, the exit code is 0, zero-shot accuracy is stored
by default (the model's own tasks, as a sweep evaluates them) and ``--no-tasks`` skips them."""

from __future__ import annotations

import json

import pytest

from complaw.cli import main

BUDGET = ["--test-blocks", "4", "--task-limit", "10", "--seq-len", "64", "--no-runtime"]


@pytest.mark.slow
def test_run_prints_its_summary_and_stores_accuracy_by_default(tmp_path, capsys):
    out = tmp_path / "rec.json"
    code = main(["run", "zoo:llama-xs", "--method", "random-ffn", "--ratio", "0.5", "--rft-samples", "4",
                 *BUDGET, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    assert "success" in captured.out and "measured param_reduction" in captured.out
    assert f"record written to {out}" in captured.out.replace("\n", "")
    rec = json.loads(out.read_text())
    for state in ("base", "compressed", "recovered"):
        assert set(rec[state]["tasks"]) == {"zoo_nextline", "zoo_identifier", "zoo_keyword"}, state
        assert 0 <= rec[state]["avg_acc"] <= 1
    assert rec["config"]["eval"]["tasks"] is None  # the default: the model's own tasks


@pytest.mark.slow
def test_no_tasks_skips_zero_shot_and_the_summary_still_prints(tmp_path, capsys):
    out = tmp_path / "rec.json"
    code = main(["run", "zoo:llama-xs", "--method", "random-ffn", "--ratio", "0.5", "--no-tasks", *BUDGET,
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "success" in captured.out
    rec = json.loads(out.read_text())
    assert rec["base"]["tasks"] == {} and rec["base"]["avg_acc"] is None


def test_run_out_never_lands_in_a_checkpoint_or_on_an_input(tmp_path, capsys):
    from complaw.zoo import resolve_model

    model = resolve_model("zoo:llama-xs")
    code = main(["run", "zoo:llama-xs", "--no-tasks", "--out", str(model / "config.json")])
    err = capsys.readouterr().err
    assert code == 2 and "inside the model checkpoint" in err, err
    data = tmp_path / "test.txt"
    data.write_text("def f(x):\n    return x\n" * 50)
    before = data.read_text()
    code = main(["run", "zoo:llama-xs", "--no-tasks", "--test-data", str(data), "--out", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and "--test-data input" in err, err
    assert data.read_text() == before
