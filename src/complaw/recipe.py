"""One compression-law data point, end to end: the recipe.

    load base → evaluate base (L0) → compress → evaluate → recover (RFT over D samples) → evaluate → record

Each evaluation gives the intrinsic test loss, the zero-shot accuracies (lm-eval) and, if asked, the
runtime. The result is one typed :class:`ExperimentRecord` keyed by the hash of its resolved config,
with status ``success``, ``failed`` (the run broke: the error text is kept) or ``invalid`` (the run
finished but a number is unusable, e.g. the loss became NaN). Bad settings found before any work is
done raise :class:`~complaw.errors.ComplawError` instead.

    >>> record = run_experiment(ExperimentConfig(model="zoo:llama-s", method="prunenet", ratio=0.5,
    ...                                          rft=RFTConfig(rft_samples=64)))
    >>> record.status, record.compressed.test_loss, record.recovered.test_loss
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import subprocess
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from complaw import checks
from complaw.checks import MAX_SEED, Bound
from complaw.compress import compress, get_method
from complaw.compress.registry import check_options
from complaw.errors import ComplawError
from complaw.evaluate import lm_loss, measure_runtime, zero_shot
from complaw.evaluate.memory import PeakMemory, limit_allocator_caching, release_memory
from complaw.models import load, load_tokenizer
from complaw.models.io import check_model, dtype_name, resolve_device
from complaw.recover import RFTConfig, check_recovery_data, recover
from complaw.textdata import check_source, load_texts, token_blocks

Status = Literal["success", "failed", "invalid", "running"]


def zoo_tasks() -> list[str]:
    try:
        from complaw import zoo

        return list(zoo.task_names())
    except Exception:  # the zoo is optional: without it there are no default tasks
        return []


class EvalConfig(BaseModel):
    """How a model is evaluated (the same settings for base, compressed and recovered models)."""

    model_config = ConfigDict(extra="forbid")

    test_data: str = Field("zoo:test", description="Test set for the intrinsic loss (zoo split, file or HF id)")
    seq_len: int = Field(128, ge=2, description="Tokens per test block")
    max_blocks: int | None = Field(64, ge=1, description="Test blocks used (None: all)")
    batch_size: int = Field(8, ge=1, description="Blocks per forward pass")
    tasks: list[str] | None = Field(None, description="lm-eval tasks (None: the zoo's tasks; [] for none)")
    task_limit: int | None = Field(200, ge=1, description="Items per task (None: all)")
    task_batch_size: int = Field(16, ge=1, description="lm-eval batch size (given to HFLM; fewer requests where "
                                 "a batch's logits and log-softmax would pass 256 MiB, see evaluate.extrinsic)")
    include_path: str | None = Field(None, description="Directory of extra lm-eval task YAMLs")
    extra_test_data: list[str] = Field(
        default_factory=list, description="More test sets for intrinsic losses beside test_data (e.g. "
        "zoo:prose-test, English prose): each gives a loss_<name> metric, same seq_len and max_blocks")

    def task_list(self) -> list[str]:
        return zoo_tasks() if self.tasks is None else list(self.tasks)


class RuntimeConfig(BaseModel):
    """Runtime measurement settings."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Measure prefill latency and decode throughput")
    batch_size: int = Field(1, ge=1, description="Sequences per forward pass")
    seq_len: int = Field(128, ge=1, description="Prompt tokens")
    new_tokens: int = Field(16, ge=1, description="Generated tokens for decode throughput")
    repeats: int = Field(5, ge=1, description="Timed repeats (median reported); rounds of the interleaved protocol")
    protocol: Literal["interleaved", "sequential"] = Field(
        "interleaved", description="interleaved: base and compressed model timed in alternating rounds after "
        "compression (the base reloaded for it), robust to a busy machine; sequential: the base timed before "
        "compressing, the compressed model after (the old protocol)")
    noisy_dispersion: float = Field(
        0.15, gt=0, description="A paired measurement whose per-round speedups spread more than this (IQR / "
        "median) is marked noisy: stored and shown, left out of the speed-law fit")


#: (section, field) → default of settings added after stores existed: at their default they stay out of the hash.
HASH_NEW_DEFAULTS: dict[tuple[str, str], Any] = {("runtime", "protocol"): "interleaved",
                                                 ("runtime", "noisy_dispersion"): 0.15,
                                                 ("eval", "extra_test_data"): []}


def loss_metric_name(test_data: str) -> str:
    """The metric name of an extra test set's loss: ``zoo:prose-test`` → ``loss_prose_test``."""
    tail = test_data.replace("\\", "/").rstrip("/").split("/")[-1].split(":")[-1]
    tail = tail.rsplit(".", 1)[0] if "." in tail else tail
    return "loss_" + "".join(ch if ch.isalnum() else "_" for ch in tail).strip("_").lower()


#: (section, field) → the name the field had when stores were first written: the hash keeps the first name, so
#: renaming a setting (one name per quantity, #16) changes no experiment's identity.
HASH_FIRST_NAMES: dict[tuple[str, str], str] = {("rft", "rft_samples"): "samples",
                                                ("rft", "warmup_fraction"): "warmup"}


def hashable(d: dict) -> dict:
    """A config dump as the hash sees it: settings of :data:`HASH_NEW_DEFAULTS` at their default left out,
    renamed settings under their first names (:data:`HASH_FIRST_NAMES`)."""
    for (section, key), default in HASH_NEW_DEFAULTS.items():
        if isinstance(d.get(section), dict) and d[section].get(key) == default:
            d[section].pop(key)
    for (section, key), first in HASH_FIRST_NAMES.items():
        if isinstance(d.get(section), dict) and key in d[section]:
            d[section][first] = d[section].pop(key)
    return d


class ExperimentConfig(BaseModel):
    """One experiment: (model, method, ratio, D) and how to evaluate it."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., description="zoo:NAME, real:NAME, a .gguf file, a local checkpoint directory, or a hub id")
    method: str = Field(..., description="Registered compression method (complaw methods)")
    ratio: float = Field(..., ge=0, lt=1, allow_inf_nan=False, description="The method's own compression ratio")
    method_options: dict[str, Any] = Field(default_factory=dict, description="Method-specific options")
    calibration: str | None = Field(None, description="Calibration data for calibration-based methods (default zoo)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the compression (0 to 2**32 - 1)")
    rft: RFTConfig = Field(default_factory=RFTConfig, description="Recovery fine-tuning")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="Runtime measurement")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1, …")
    dtype: str = Field("auto", description="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    trust_remote_code: bool = Field(False, description="Allow custom modelling code from the checkpoint")
    # A permission, not a setting: it changes no number, so it stays out of the dump, the hash and the store.
    allow_pickle: bool = Field(False, exclude=True, description="Read pickled .bin weights of a checkpoint "
                               "without safetensors (unpickling can run arbitrary code)")

    def config_hash(self) -> str:
        """Hash of the resolved config: the experiment's identity in the results store. Settings added after a
        store was written leave the hash as it was while they keep their default (:data:`HASH_NEW_DEFAULTS`),
        so an old store resumes."""
        text = json.dumps(hashable(self.model_dump(mode="json")), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: The longest sequence (tokens) any setting may ask for: beyond the context of every supported model.
MAX_SEQ_LEN = 131_072
#: Most recovery samples D. Ten million blocks of ``seq_len`` tokens (over a billion tokens at 128) is far
#: beyond any recovery run (the study's largest D are thousands); below it, :func:`prepare` checks that the
#: dataset holds D samples before anything is compressed.
MAX_RFT_SAMPLES = 10_000_000

#: The range of every numeric setting of an :class:`ExperimentConfig` (dotted key → :class:`~complaw.checks.Bound`),
#: checked by :func:`check_settings` before any work. (Not in the models' validation: stored records keep loading
#: whatever their values.)
SETTING_BOUNDS: dict[str, Bound] = {
    "ratio": Bound(0, 1, "the method's compression ratio, e.g. 0.3", hi_open=True),
    "seed": Bound(0, MAX_SEED, "a seed every RNG accepts", integer=True),
    "rft.rft_samples": Bound(0, MAX_RFT_SAMPLES, "recovery samples D (0: no RFT); ten million is beyond any "
                             "recovery run", integer=True),
    "rft.seq_len": Bound(2, MAX_SEQ_LEN, "tokens per recovery sample, within a model's context", integer=True),
    "rft.rank": Bound(1, 4096, "LoRA rank (the paper: 16); wider than a layer adds nothing", integer=True),
    "rft.alpha": Bound(0, 1e6, "LoRA alpha (scaling = alpha / rank), e.g. 32", lo_open=True),
    "rft.dropout": Bound(0, 1, "LoRA dropout probability, e.g. 0.05", hi_open=True),
    "rft.lr": Bound(0, 1, "AdamW's peak learning rate, e.g. 1e-3; above 1 the adapters diverge", lo_open=True),
    "rft.weight_decay": Bound(0, 1, "AdamW weight decay, e.g. 0 or 0.01"),
    "rft.batch_size": Bound(1, 4096, "recovery samples per optimiser step", integer=True),
    "rft.warmup_fraction": Bound(0, 1, "fraction of the steps warmed up, e.g. 0.1", hi_open=True),
    "rft.epochs": Bound(1, 1000, "passes over the D samples (the paper: 1)", integer=True),
    "rft.max_grad_norm": Bound(0, 1e6, "gradient clipping norm, e.g. 1", lo_open=True),
    "rft.seed": Bound(0, MAX_SEED, "a seed every RNG accepts", integer=True),
    "eval.seq_len": Bound(2, MAX_SEQ_LEN, "tokens per test block, within a model's context", integer=True),
    "eval.max_blocks": Bound(1, 1_000_000, "test blocks (null: all the test set holds)", integer=True),
    "eval.batch_size": Bound(1, 4096, "test blocks per forward pass", integer=True),
    "eval.task_limit": Bound(1, 1_000_000, "items per task (null: all)", integer=True),
    "eval.task_batch_size": Bound(1, 4096, "lm-eval batch size", integer=True),
    "runtime.batch_size": Bound(1, 1024, "sequences per timed forward pass", integer=True),
    "runtime.seq_len": Bound(1, MAX_SEQ_LEN, "prompt tokens of the runtime measurement", integer=True),
    "runtime.new_tokens": Bound(1, 4096, "generated tokens of the decode measurement", integer=True),
    "runtime.repeats": Bound(1, 1000, "timed repeats (the median settles within tens)", integer=True),
    "runtime.noisy_dispersion": Bound(0, 100, "the spread (IQR / median) beyond which a timing is noisy, e.g. "
                                      "0.15", lo_open=True),
}

#: Most lm-eval tasks and extra test sets of one evaluation.
MAX_EVAL_SETS = 1000


def check_settings(cfg: ExperimentConfig, where: str = "experiment config",
                   names: dict[str, str] | None = None) -> ExperimentConfig:
    """Every setting of ``cfg`` within its range (:data:`SETTING_BOUNDS`), the model named and the method's
    options valid — checked before any work; a bad one is one :class:`ComplawError` line starting with
    ``where`` and naming the setting (as ``names`` spells it, when given)."""
    names = names or {}
    if not cfg.model.strip():
        raise ComplawError(f"{where}: {names.get('model', 'model')} {cfg.model!r}: empty model name; give "
                           "zoo:NAME, real:NAME, a .gguf file, a checkpoint directory or a hub id")
    for key, bound in SETTING_BOUNDS.items():
        value = _setting(cfg, key)
        if value is not None:
            checks.bounded(value, f"{where}: {names.get(key, key)}", bound)
    for key, items in (("eval.tasks", cfg.eval.tasks or []), ("eval.extra_test_data", cfg.eval.extra_test_data)):
        if len(items) > MAX_EVAL_SETS:
            raise ComplawError(f"{where}: {names.get(key, key)}: {len(items):,} entries, at most {MAX_EVAL_SETS}")
        if any(not str(x).strip() for x in items):
            raise ComplawError(f"{where}: {names.get(key, key)}: an empty name; give each by name")
    targets = cfg.rft.target_modules
    if not (targets.strip() if isinstance(targets, str) else targets and all(str(t).strip() for t in targets)):
        raise ComplawError(f"{where}: {names.get('rft.target_modules', 'rft.target_modules')} {targets!r}: names "
                           "no module; give 'all-linear' or a list of module names, e.g. [q_proj, v_proj]")
    for key in ("eval.test_data", "rft.dataset"):
        if not _setting(cfg, key).strip():
            raise ComplawError(f"{where}: {names.get(key, key)} '': empty; give zoo:SPLIT, a file or a dataset id")
    get_method(cfg.method)
    try:
        check_options(cfg.method, cfg.method_options)
    except ComplawError as err:
        raise ComplawError(f"{where}: {err}") from None
    return cfg


def _setting(cfg: ExperimentConfig, key: str) -> Any:
    """The value of a dotted setting (``rft.lr``) of ``cfg``."""
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def experiment_config(tree: dict, *, where: str = "experiment config",
                      flags: dict[str, str] | None = None) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a mapping (a YAML config with its overrides applied), every setting
    checked (:func:`check_settings`); a bad setting is one :class:`ComplawError` line naming it (as ``flags``
    spells it, when given)."""
    from pydantic import ValidationError

    from complaw.errors import from_validation

    try:
        cfg = ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        raise from_validation(err, where, flags) from None
    return check_settings(cfg, where, flags)


def load_experiment(source: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read an experiment config (YAML) and apply ``key=value`` overrides (as :func:`complaw.sweep.load_spec`)."""
    from complaw.config import apply_overrides, read_tree

    tree, where = read_tree(source, what="experiment config")
    return experiment_config(apply_overrides(tree, overrides, example="ratio=0.4"), where=where)


class Metrics(BaseModel):
    """Evaluation of one model state."""

    test_loss: float
    perplexity: float
    test_tokens: int
    losses: dict[str, float] = Field(default_factory=dict, description="Loss on each extra test set, by metric name")
    tasks: dict[str, dict[str, float]] = Field(default_factory=dict)
    avg_acc: float | None = None  # mean acc_norm (acc where a task has none)
    avg_acc_raw: float | None = None  # mean acc
    params: int
    prefill_latency_s: float | None = Field(None, validation_alias=AliasChoices("prefill_latency_s", "latency_s"),
                                            description="Prefill latency in seconds (median of the timed repeats)")
    decode_tokens_per_s: float | None = None
    flops_per_token: float | None = None

    def set_runtime(self, rt) -> None:
        """Take the runtime fields from a :class:`~complaw.evaluate.RuntimeResult` or another Metrics."""
        self.prefill_latency_s = rt.prefill_latency_s
        self.decode_tokens_per_s, self.flops_per_token = rt.decode_tokens_per_s, rt.flops_per_token


class ExperimentRecord(BaseModel):
    """The typed result of one experiment (one row of the results store)."""

    config_hash: str
    config: ExperimentConfig
    status: Status = "failed"
    error: str | None = None
    base: Metrics | None = None
    compressed: Metrics | None = None
    recovered: Metrics | None = None
    compression: dict[str, Any] | None = None
    rft: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = Field(
        None, description="The paired runtime measurement of base and compressed model (interleaved rounds): "
        "speedup, speedup_min, dispersion, noisy, cpu_speedup, decode_speedup, flop_ideal_speedup, ratios")
    base_latency_s: float | None = Field(
        None, description="The base model's prefill latency measured in this unit right before compression, "
        "so that a speedup compares two timings taken around one compression apart, not across a whole sweep")
    timings_s: dict[str, float] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    device: str = ""
    dtype: str = Field("", description="The compute dtype (models.io.resolve_device's rule), e.g. float32")
    peak_rss_bytes: int | None = Field(
        None, description="Peak resident memory of the process from the start of this experiment's unit "
        "(load, compress, every evaluation) to the end of this experiment")
    peak_rss_exact: bool | None = Field(
        None, description="True: the kernel's own peak (ru_maxrss); False: the highest RSS sampled every 5 ms, "
        "a lower bound (an earlier unit of the same process had gone higher)")
    start_rss_bytes: int | None = Field(
        None, description="Resident memory when the unit began (Python, torch, tokenizer, test data)")
    cuda_max_allocated_bytes: int | None = Field(
        None, description="torch.cuda.max_memory_allocated over the same stretch; None off CUDA")
    git_revision: str | None = None
    started_at: str = ""
    finished_at: str | None = None

    @field_validator("rft", mode="before")
    @classmethod
    def _rft_names(cls, v):
        """An RFT record written before #16 names D ``samples``: read it as ``rft_samples``."""
        if isinstance(v, dict) and "samples" in v and "rft_samples" not in v:
            v = {("rft_samples" if k == "samples" else k): x for k, x in v.items()}
        return v

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.model_dump_json(indent=2))
        return p


# --- components -------------------------------------------------------------------------------------------
class Evaluator:
    """Evaluates model states with fixed settings; the test blocks are tokenised once."""

    def __init__(self, cfg: EvalConfig, tokenizer, runtime: RuntimeConfig | None = None):
        self.cfg, self.tokenizer, self.runtime = cfg, tokenizer, runtime
        self.blocks = token_blocks(load_texts(cfg.test_data, what="test data"), tokenizer, cfg.seq_len,
                                   cfg.max_blocks)
        self.extra = {loss_metric_name(d): token_blocks(load_texts(d, what="test data"), tokenizer, cfg.seq_len,
                                                        cfg.max_blocks)
                      for d in cfg.extra_test_data}
        self.tasks = cfg.task_list()

    def check_tasks(self) -> None:
        """Fail early (before any model work) on a task lm-eval does not know."""
        if self.tasks:
            from complaw.evaluate.extrinsic import task_manager

            manager = task_manager(self.tasks, self.cfg.include_path)
            unknown = [t for t in self.tasks if t not in manager.all_tasks]
            if unknown:
                raise ComplawError(f"task {unknown[0]!r}: lm-eval knows no such task here "
                                   "(local tasks need include_path; zoo tasks start with zoo_)")

    def runtime_of(self, model):
        """The model's :class:`~complaw.evaluate.RuntimeResult`, or None when runtime is not measured."""
        if self.runtime is None or not self.runtime.enabled:
            return None
        return measure_runtime(model, batch_size=self.runtime.batch_size, seq_len=self.runtime.seq_len,
                               new_tokens=self.runtime.new_tokens, repeats=self.runtime.repeats)

    def paired_runtime(self, base, compressed):
        """The :class:`~complaw.evaluate.runtime.PairedRuntime` of a base and a compressed model (interleaved)."""
        from complaw.evaluate.runtime import measure_paired

        r = self.runtime
        return measure_paired(base, compressed, batch_size=r.batch_size, seq_len=r.seq_len,
                              new_tokens=r.new_tokens, rounds=r.repeats, bound=r.noisy_dispersion)

    def __call__(self, model, *, with_runtime: bool = True) -> Metrics:
        from complaw.models.params import count_parameters

        # Runtime first: right after a compression it is then timed close to the base model's paired
        # measurement (see run_unit), before minutes of evaluation let the machine's speed drift.
        rt = self.runtime_of(model) if with_runtime else None
        loss = lm_loss(model, self.blocks, batch_size=self.cfg.batch_size)
        out = Metrics(test_loss=loss.loss, perplexity=loss.perplexity, test_tokens=loss.tokens,
                      params=count_parameters(model),
                      losses={k: lm_loss(model, b, batch_size=self.cfg.batch_size).loss for k, b in self.extra.items()})
        if self.tasks and math.isfinite(loss.loss):
            zs = zero_shot(model, self.tokenizer, self.tasks, batch_size=self.cfg.task_batch_size,
                           limit=self.cfg.task_limit, include_path=self.cfg.include_path)
            out.tasks, out.avg_acc, out.avg_acc_raw = zs.tasks, zs.average, zs.average_acc
        if rt is not None:
            out.set_runtime(rt)
        return out


def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("complaw", "torch", "transformers", "peft", "lm_eval"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return res.stdout.strip() or None if res.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def method_options(cfg: ExperimentConfig, tokenizer) -> dict[str, Any]:
    """The method's options, plus calibration data and tokenizer for calibration-based methods."""
    options = dict(cfg.method_options)
    if get_method(cfg.method).needs_calibration:
        options.setdefault("tokenizer", tokenizer)
        if cfg.calibration is not None:
            options.setdefault("calibration", cfg.calibration)
    return options


def invalid_reason(metrics: Metrics, stage: str) -> str | None:
    if not math.isfinite(metrics.test_loss):
        return f"test loss of the {stage} model is {metrics.test_loss}"
    return None


# --- the recipe --------------------------------------------------------------------------------------------
def _unit_key(cfg: ExperimentConfig) -> str:
    """Configs of one unit differ only in the amount of recovery data."""
    d = cfg.model_dump(mode="json")
    d["rft"].pop("rft_samples")
    return json.dumps(d, sort_keys=True)


def prepare(cfg: ExperimentConfig):
    """Checks that need no model work, so that a bad setting stops with one clear line before any work.

    Returns:
        ``(device, dtype, tokenizer, evaluator)``.
    """
    check_settings(cfg)  # ratio, seeds, every setting in range; the method and its options
    check_method_files(cfg)
    if cfg.eval.include_path is not None:
        checks.input_file(cfg.eval.include_path, "include_path", directory=True)
    device, dtype = resolve_device(cfg.device, cfg.dtype)
    check_model(cfg.model, allow_pickle=cfg.allow_pickle, trust_remote_code=cfg.trust_remote_code)
    tokenizer = load_tokenizer(cfg.model, trust_remote_code=cfg.trust_remote_code)
    evaluate = Evaluator(cfg.eval, tokenizer, cfg.runtime)
    evaluate.check_tasks()
    check_recovery_data(tokenizer, cfg.rft)
    return device, dtype, tokenizer, evaluate


def check_method_files(cfg: ExperimentConfig) -> None:
    """The files the method reads, checked before any work: calibration data (``calibration`` or the
    ``calibration=`` option) and a PruneNet ``policy=`` file (readable, or a writable path for a new one)."""
    options = cfg.method_options
    check_source(options.get("calibration", cfg.calibration), "calibration")
    if isinstance(options.get("policy"), str):
        from complaw.compress.prunenet import check_policy_file

        check_policy_file(options["policy"])


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Time the block into ``timings[name]`` (seconds of wall time, kept when the block raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - start


def fail(record: ExperimentRecord, err: BaseException) -> None:
    """Mark ``record`` as broken by ``err`` — the one rule the recipe and the sweep share: a user error
    (:class:`ComplawError`) or an unusable number is ``invalid`` with its message; anything else is ``failed``,
    kept with the exception's type, message and the last lines of its traceback."""
    if isinstance(err, (ComplawError, FloatingPointError)):
        record.status, record.error = "invalid", str(err)
    else:  # keep the record of a broken run, with the reason
        tail = "".join(traceback.format_exception(err)[-3:]).strip()
        record.status, record.error = "failed", f"{type(err).__name__}: {err}\n{tail}"


def failed_records(cfgs: list[ExperimentConfig], err: BaseException, base: Metrics | None = None
                   ) -> list[ExperimentRecord]:
    """Records of experiments that could not start (their unit was refused or broke before any work)."""
    records = []
    for cfg in cfgs:
        rec = ExperimentRecord(config_hash=cfg.config_hash(), config=cfg, base=base, started_at=utc_now())
        fail(rec, err)
        _close(rec)
        records.append(rec)
    return records


def _close(record: ExperimentRecord, mem: PeakMemory | None = None) -> None:
    if mem is not None:  # the unit's peak so far: load, compression and every evaluation up to this record
        peak = mem.read()
        record.peak_rss_bytes, record.peak_rss_exact = peak.rss_bytes, peak.rss_exact
        record.start_rss_bytes, record.cuda_max_allocated_bytes = peak.rss_start_bytes, peak.cuda_max_allocated_bytes
    record.finished_at = utc_now()
    if record.status != "running":
        return
    stages = ((record.base, "base"), (record.compressed, "compressed"), (record.recovered, "recovered"))
    reasons = [r for r in (invalid_reason(m, s) for m, s in stages if m is not None) if r]
    record.status, record.error = ("invalid", "; ".join(reasons)) if reasons else ("success", None)


def _load(cfg: ExperimentConfig, device, dtype):
    return load(cfg.model, dtype=dtype, device=device, trust_remote_code=cfg.trust_remote_code,
                allow_pickle=cfg.allow_pickle)


def evaluate_base(cfg: ExperimentConfig) -> Metrics:
    """L0 (and base runtime) of ``cfg.model`` under ``cfg``'s evaluation settings — measured once per model."""
    device, dtype, _, evaluate = prepare(cfg)
    return evaluate(_load(cfg, device, dtype))


class _PairedRuntime:
    """The unit's runtime protocol: the base model's prefill latency and the compressed model's, timed around
    one compression — in alternating rounds after it (``interleaved``: the base reloaded for it, so a busy
    machine slows both alike) or right before and after it (``sequential``, the old protocol)."""

    def __init__(self, cfg: ExperimentConfig, evaluate: Evaluator, base: Metrics | None):
        self.cfg, self.evaluate, self.base = cfg, evaluate, base  # base: set when measured in this unit
        self.interleaved = cfg.runtime.enabled and cfg.runtime.protocol == "interleaved"
        self.base_latency_s: float | None = None
        self.pair = None

    def before_compression(self, model, timings: dict[str, float]) -> None:
        if self.interleaved:
            return
        with timed(timings, "runtime_base"):
            rt = self.evaluate.runtime_of(model)
        self.base_latency_s = rt.prefill_latency_s if rt is not None else None
        if self.base is not None and rt is not None:
            self.base.set_runtime(rt)

    def after_compression(self, model, timings: dict[str, float], reload, device) -> None:
        if not self.interleaved:
            return
        with timed(timings, "runtime"):
            self.pair = self.evaluate.paired_runtime(reload(), model)
            self.base_latency_s = self.pair.base.prefill_latency_s
            if self.base is not None:
                self.base.set_runtime(self.pair.base)
            release_memory(device)  # the reloaded base

    def evaluate_compressed(self, model) -> Metrics:
        metrics = self.evaluate(model, with_runtime=not self.interleaved)
        if self.pair is not None:
            metrics.set_runtime(self.pair.compressed)
        return metrics


def run_unit(cfgs: list[ExperimentConfig], *, base: Metrics | None = None) -> list[ExperimentRecord]:
    """One unit of work: load → evaluate the base → compress → evaluate → for each D: recover → evaluate → record.

    The unit compresses once; every D starts from the compressed weights.

    Args:
        cfgs: experiments that differ only in ``rft.rft_samples`` (one record each, in this order).
        base: the base model's metrics if already measured (else they are measured here).

    Raises:
        ComplawError: settings that are wrong before any work starts (see :func:`prepare`).
    """
    cfg, (device, dtype, tokenizer, evaluate) = cfgs[0], _prepare_unit(cfgs)
    info = dict(versions=package_versions(), git_revision=git_revision(), started_at=utc_now(), device=str(device),
                dtype=dtype_name(dtype))
    records = [ExperimentRecord(config_hash=c.config_hash(), config=c, status="running", **info) for c in cfgs]
    t: dict[str, float] = {}  # the timings every record of the unit shares
    limit_allocator_caching()  # freed activations go back to the OS instead of staying resident
    with PeakMemory(device) as mem:
        try:
            with timed(t, "load"):
                model = _load(cfg, device, dtype)
            measured_here = base is None
            if measured_here:
                with timed(t, "evaluate_base"):
                    base = evaluate(model, with_runtime=False)
            runtime = _PairedRuntime(cfg, evaluate, base if measured_here else None)
            runtime.before_compression(model, t)
            with timed(t, "compress"):
                model, comp = compress(model, cfg.method, cfg.ratio, seed=cfg.seed, **method_options(cfg, tokenizer))
            comp.details.update(device=str(device), dtype=dtype_name(dtype))
            runtime.after_compression(model, t, lambda: _load(cfg, device, dtype), device)
            with timed(t, "evaluate_compressed"):
                compressed = runtime.evaluate_compressed(model)
        except Exception as err:  # the unit broke before any D: every record carries the reason
            for rec in records:
                rec.base = base
                rec.timings_s.update(t)
                fail(rec, err)
                _close(rec, mem)
        else:
            for rec, from_compressed in zip(records, _from_compressed(model, cfgs), strict=True):
                rec.base, rec.compressed, rec.compression = base, compressed, comp.to_dict()
                rec.base_latency_s = runtime.base_latency_s
                rec.runtime = runtime.pair.to_dict() if runtime.pair is not None else None
                rec.timings_s.update(t)
                _recover_and_evaluate(rec, from_compressed, tokenizer, evaluate, compressed, device)
                _close(rec, mem)
    release_memory(device)  # the unit's model is gone: the next unit of a sweep starts from the baseline
    return records


def _prepare_unit(cfgs: list[ExperimentConfig]):
    """:func:`prepare` for a unit: its configs differ only in D, and the recovery dataset holds the largest D."""
    if len({_unit_key(c) for c in cfgs}) != 1:
        raise ValueError("run_unit: configs of one unit may differ only in rft.rft_samples")
    prepared = prepare(cfgs[0])
    # the configs differ only in D: the dataset holding the largest D holds every one
    check_recovery_data(prepared[2], max(cfgs, key=lambda c: c.rft.rft_samples).rft)
    return prepared


def _from_compressed(model, cfgs: list[ExperimentConfig]) -> Iterator:
    """The compressed model once per config, each D > 0 starting from the compressed weights again.

    RFT changes the weights in place: with more than one D > 0 the compressed weights are kept (on the CPU)
    to restore them; the last D needs no copy (the model is dropped after it), so a unit with a single D > 0
    (every ``complaw run``) keeps none."""
    with_rft = [i for i, c in enumerate(cfgs) if c.rft.rft_samples]
    snapshot = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()} \
        if len(with_rft) > 1 else None
    for i in range(len(cfgs)):
        if with_rft and i in with_rft[1:]:
            model.load_state_dict(snapshot)
        if with_rft and i == with_rft[-1]:
            snapshot = None
        yield model


def _recover_and_evaluate(rec: ExperimentRecord, model, tokenizer, evaluate: Evaluator, compressed: Metrics,
                          device) -> None:
    """RFT over the record's D samples and the recovered model's metrics (D = 0: the compressed model's)."""
    c = rec.config
    if not c.rft.rft_samples:
        rec.recovered = compressed
        return
    try:
        with timed(rec.timings_s, "rft"):
            model, rft = recover(model, tokenizer, c.rft)
        rec.rft = rft.to_dict()
        with timed(rec.timings_s, "evaluate_recovered"):
            recovered = evaluate(model, with_runtime=False)
            recovered.set_runtime(compressed)  # LoRA is merged: the architecture, and so the runtime, is the same
        rec.recovered = recovered
    except Exception as err:
        fail(rec, err)
    release_memory(device)  # the RFT step's activations and optimiser state


def run_experiment(cfg: ExperimentConfig, *, out: str | Path | None = None) -> ExperimentRecord:
    """Run one experiment and return its record (also written as JSON to ``out`` if given).

    Raises:
        ComplawError: settings that are wrong before any work starts (unknown method or task,
            missing model or data file, ratio out of range, an ``out`` that cannot be written).
    """
    if out is not None:
        checks.output_path(out, "out")
    record = run_unit([cfg])[0]
    if out is not None:  # written after the work: when ``out`` fails now, the record goes to a fallback
        checks.write_or_keep(record.save, out, "out")
    return record
