"""Extrinsic evaluation: zero-shot accuracy through lm-evaluation-harness on the in-memory model.

Any lm-eval task name works (``piqa``, ``arc_easy`` …, where the machine can reach their data), and so
do local task configs: the zoo's tasks (``zoo_*``) are found automatically, other directories of YAML
configs can be passed as ``include_path``. acc and acc_norm are reported per task, with their average
(acc_norm where the task has it, acc otherwise — the convention of this line of work).

    >>> res = zero_shot(model, tokenizer, ["zoo_nextline"], limit=200)
    >>> res.average, res.tasks["zoo_nextline"]["acc"]
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
from dataclasses import dataclass, field

from complaw.errors import ComplawError

PRIMARY = "acc_norm"  # averaged where present, else acc
# lm-eval holds a batch's logits and their log-softmax at once, (B, T, V) float32 each: for SmolLM2's 49,152-
# token vocabulary and 16 requests of ~100 tokens that is 1.3 GB, 2.3x the model. Batches are made smaller
# (never larger than asked) so that the two stay under this budget.
LOGITS_BUDGET_BYTES = 256 * 2**20


def _budget_batch(batch_size: int, longest: int, vocab: int, budget: int | None = None) -> int:
    """Requests per forward pass: at most ``batch_size``, and few enough that logits + log-softmax of the
    longest request (``longest`` tokens) fit ``budget`` (default :data:`LOGITS_BUDGET_BYTES`); at least one."""
    budget = LOGITS_BUDGET_BYTES if budget is None else budget
    per_request = 2 * longest * vocab * 4
    return max(1, min(batch_size, budget // max(per_request, 1)))


@dataclass(frozen=True)
class ZeroShotResult:
    tasks: dict[str, dict[str, float]]  # task -> {"acc": …, "acc_norm": …, "acc_stderr": …, "n": …}
    average: float  # mean over tasks of acc_norm (acc where a task has no acc_norm)
    average_acc: float  # mean over tasks of acc
    lm_eval_version: str
    task_versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"tasks": self.tasks, "average": self.average, "average_acc": self.average_acc,
                "lm_eval_version": self.lm_eval_version, "task_versions": self.task_versions}


@functools.lru_cache(maxsize=8)
def _cached_manager(paths: tuple[str, ...], include_defaults: bool):
    from lm_eval.tasks import TaskManager

    # Indexing lm-eval's ~15k bundled task configs takes tens of seconds: do it once per process.
    return TaskManager(include_path=list(paths) or None, include_defaults=include_defaults)


def task_manager(tasks: list[str], include_path: str | list[str] | None):
    """A TaskManager that knows ``tasks``: local task directories alone when they suffice, else lm-eval's all."""
    paths = [include_path] if isinstance(include_path, str) else list(include_path or [])
    if any(t.startswith("zoo_") for t in tasks):
        from complaw import zoo

        paths.append(str(zoo.task_include_path()))
    if paths:
        local = _cached_manager(tuple(paths), False)
        if all(t in local.all_tasks for t in tasks):
            return local
    return _cached_manager(tuple(paths), True)


@contextlib.contextmanager
def _quiet_git_hash():
    """lm-eval records ``git describe`` of the working directory by running git with its stderr on ours: outside
    a checkout every evaluation printed ``fatal: not a git repository``. The same lookup, with git's stderr
    discarded, for the duration of one evaluation."""
    import subprocess

    import lm_eval.evaluator as evaluator

    original = getattr(evaluator, "get_git_commit_hash", None)
    if original is None:  # a newer lm-eval without it: nothing to quiet
        yield
        return

    def quiet() -> str | None:
        try:
            out = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None

    evaluator.get_git_commit_hash = quiet
    try:
        yield
    finally:
        evaluator.get_git_commit_hash = original


def zero_shot(model, tokenizer, tasks: list[str], *, batch_size: int = 16, limit: int | float | None = None,
              include_path: str | list[str] | None = None, num_fewshot: int = 0, seed: int = 1234,
              max_length: int | None = None, quiet: bool = True) -> ZeroShotResult:
    """Run lm-eval tasks on an in-memory model and collect acc / acc_norm.

    Args:
        model: a causal LM (any module HFLM accepts: it needs ``.config``, ``.device`` and logits).
        tokenizer: its tokenizer.
        tasks: lm-eval task names.
        batch_size: given to HFLM (lm-eval ignores a batch size passed to simple_evaluate for model objects).
        limit: items per task (int) or share of each task (float); None for all.
        include_path: extra directories of task YAMLs.
        num_fewshot: 0 for zero-shot.
        seed: lm-eval's random seeds.
        max_length: context length for HFLM (default: the model's).
        quiet: hide lm-eval's progress bars (they go to stderr).
    """
    if not tasks:
        raise ComplawError("tasks: give at least one lm-eval task name")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    for name in ("lm-eval", "lm_eval"):
        logging.getLogger(name).setLevel(logging.ERROR)
    manager = task_manager(tasks, include_path)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ComplawError(f"task {unknown[0]!r}: lm-eval knows no such task here; local tasks need their "
                           "YAML directory as include_path (zoo tasks start with zoo_)")
    kwargs = {"max_length": max_length} if max_length else {}
    lm = _BudgetHFLM(HFLM)(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                           device=str(_device(model)), **kwargs)
    # lm-eval draws several progress bars per task on stderr; complaw shows its own progress instead.
    mute = contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext()
    try:
        with mute, _quiet_git_hash():
            out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), num_fewshot=num_fewshot, limit=limit,
                                          task_manager=manager, log_samples=False, random_seed=seed,
                                          numpy_random_seed=seed, torch_random_seed=seed,
                                          fewshot_random_seed=seed, bootstrap_iters=0)
    except (FileNotFoundError, ConnectionError) as err:
        raise ComplawError(f"tasks {', '.join(tasks)}: data not reachable ({str(err)[:160]})") from None
    results = out["results"]
    per_task: dict[str, dict[str, float]] = {}
    for task in tasks:
        r = results.get(task, {})
        metrics = {}
        for key in ("acc", "acc_norm"):
            if f"{key},none" in r:
                metrics[key] = float(r[f"{key},none"])
            if f"{key}_stderr,none" in r and isinstance(r[f"{key}_stderr,none"], (int, float)):
                metrics[f"{key}_stderr"] = float(r[f"{key}_stderr,none"])
        n = out.get("n-samples", {}).get(task, {})
        metrics["n"] = float(n.get("effective", n.get("original", 0)) if isinstance(n, dict) else 0)
        for key in ("acc", "acc_norm"):  # lm-eval skips every stderr when bootstrap_iters = 0
            if key in metrics and f"{key}_stderr" not in metrics and metrics["n"] > 1:
                p = metrics[key]  # the standard error of a mean of 0/1 scores, as lm-eval's mean_stderr
                metrics[f"{key}_stderr"] = math.sqrt(p * (1 - p) / (metrics["n"] - 1))
        if "acc" not in metrics:
            raise ComplawError(f"task {task!r}: reports no acc metric; only multiple-choice tasks are supported")
        chance = _chance(manager, task, limit)
        if chance is not None:
            metrics["chance"] = chance
        per_task[task] = metrics
    primary = [m.get(PRIMARY, m["acc"]) for m in per_task.values()]
    versions = {t: str(v) for t, v in out.get("versions", {}).items() if t in per_task}
    return ZeroShotResult(per_task, sum(primary) / len(primary),
                          sum(m["acc"] for m in per_task.values()) / len(per_task),
                          getattr(lm_eval, "__version__", "unknown"), versions)


_CHANCE: dict[tuple[int, str, int | float | None], float | None] = {}


def _chance(manager, task: str, limit) -> float | None:
    """The expected accuracy of a uniform guess on the items evaluated: mean over docs of 1 / #choices (None when
    the task's choices cannot be read). Computed once per (task manager, task, limit) in a process."""
    key = (id(manager), task, limit)
    if key not in _CHANCE:
        try:
            from lm_eval.tasks import get_task_dict

            obj = get_task_dict([task], manager)[task]
            docs = list(obj.eval_docs)
            if isinstance(limit, float):
                docs = docs[: int(len(docs) * limit)]
            elif limit is not None:
                docs = docs[:limit]
            _CHANCE[key] = sum(1.0 / len(obj.doc_to_choice(d)) for d in docs) / len(docs) if docs else None
        except Exception:  # noqa: BLE001 — a task whose docs or choices cannot be listed: no chance level
            _CHANCE[key] = None
    return _CHANCE[key]


def primary_score(metrics: dict[str, float]) -> float:
    """acc_norm where the task has it, else acc (the convention of the compression-laws papers)."""
    return float(metrics.get(PRIMARY, metrics["acc"]))


def saturated(metrics: dict[str, float]) -> str | None:
    """Why a base model's task cannot show the effect of compression, or None.

    *Ceiling*: its accuracy is within one standard error of 1 (every item right, e.g. 1.0 on 20 items): L0 = 1
    gives log L0 = 0, the base exponent is not identified, and the task cannot register anything until it
    falls off. *Floor*: within one standard error of the chance level (a uniform guess over each item's
    choices), where compression cannot lower it measurably."""
    acc = primary_score(metrics)
    n = int(metrics.get("n", 0) or 0)
    se = float(metrics.get(f"{PRIMARY}_stderr", metrics.get("acc_stderr", 0.0)) or 0.0) \
        if PRIMARY in metrics else float(metrics.get("acc_stderr", 0.0) or 0.0)
    items = f" on {n} items" if n else ""
    if acc >= 1.0 - se - 1e-12:
        return f"ceiling: base accuracy {acc:.3f}{items} is within one standard error ({se:.3f}) of 1"
    chance = metrics.get("chance")
    if chance is not None and acc <= chance + se + 1e-12:
        return f"floor: base accuracy {acc:.3f}{items} is within one standard error ({se:.3f}) of chance ({chance:.3f})"
    if chance is None and acc <= se + 1e-12:
        return f"floor: base accuracy {acc:.3f}{items} is within one standard error ({se:.3f}) of 0"
    return None


def saturated_tasks(tasks: dict[str, dict[str, float]]) -> dict[str, str]:
    """Task → reason for the base model's tasks at ceiling or floor (see :func:`saturated`)."""
    return {t: why for t, m in tasks.items() if (why := saturated(m))}


@functools.cache
def _BudgetHFLM(base):  # noqa: N802 — builds the class on first use, as lm-eval is imported lazily
    """HFLM whose batch for each task is capped by :data:`LOGITS_BUDGET_BYTES` (see :func:`_budget_batch`).

    lm-eval scores every request on its own (causal model, right padding), so the batch size changes how
    many requests share a forward pass, not what is computed for each."""
    class BudgetHFLM(base):
        def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
            asked = self.batch_size_per_gpu
            if isinstance(asked, int) and requests:
                longest = min(max(len(ctx) + len(cont) for _, ctx, cont in requests), self.max_length + 1)
                vocab = int(getattr(self.model.config, "vocab_size", 0) or 0)
                self.batch_size_per_gpu = _budget_batch(asked, longest, vocab)
            try:
                return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
            finally:
                self.batch_size_per_gpu = asked

    return BudgetHFLM


def _device(model):
    from complaw.evaluate.intrinsic import model_device

    return model_device(model)
