"""The sweep spec: one YAML file declaring models × methods × ratios × D values × seeds and the settings.

    name: demo
    models: [zoo:llama-s, zoo:llama-m]
    methods: [prunenet, {name: slicegpt, options: {round_to: 8}}]
    ratios: [0.1, 0.3, 0.5]
    rft_samples: [0, 32, 128]
    rft: {seq_len: 128, lr: 1.0e-3}

Every key can be overridden on the command line as ``key=value`` (dotted for nested keys, values in
YAML syntax): ``complaw sweep spec.yaml ratios=[0.2,0.4] rft.lr=5e-4 eval.task_limit=100``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from complaw import checks
from complaw.checks import MAX_BOOTSTRAP, MAX_SEED, Bound
from complaw.compress.registry import check_options
from complaw.config import apply_overrides, read_tree
from complaw.errors import ComplawError, from_validation
from complaw.recipe import MAX_RFT_SAMPLES, EvalConfig, ExperimentConfig, RuntimeConfig, check_settings
from complaw.recover import RFTConfig

#: Most experiments one spec may declare (models × methods × ratios × seeds × D): each compresses and evaluates
#: a model, minutes of work; a bigger grid is several specs sharing one store.
MAX_EXPERIMENTS = 100_000
#: Longest sweep name (it names the report directory and is stored with every record).
MAX_NAME = 200


class SweepMethod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="Registered compression method")
    options: dict[str, Any] = Field(default_factory=dict, description="Method options")
    calibration: str | None = Field(None, description="Calibration data (calibration-based methods)")


class LawSettings(BaseModel):
    """What is fitted and decided after the sweep."""

    model_config = ConfigDict(extra="forbid")

    forms: list[str] = Field(default_factory=lambda: ["sengupta2025", "sengupta2025-L0-r", "pruning-law", "talk"],
                             description="Law forms fitted per (method, metric)")
    sigmas: list[float] = Field(default_factory=lambda: [0.8, 0.9], description="Target retentions for r_crit")
    d_unit: str = Field("samples", description="Name of the D unit the laws see")
    d_scale: float = Field(1.0, gt=0, description="Raw samples per law unit of D")
    bootstrap: int = Field(200, ge=0, description="Bootstrap resamples of each fit")


class SweepSpec(BaseModel):
    """A grid of compression experiments and how to run, store and report them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("sweep", description="Name of the sweep (stored with every record)")
    models: list[str] = Field(..., min_length=1, description="Base models: zoo:NAME, real:NAME, .gguf files, directories or hub ids")
    methods: list[SweepMethod] = Field(..., min_length=1, description="Compression methods")
    ratios: list[float] = Field(..., min_length=1, description="Compression ratios in [0, 1)")
    rft_samples: list[int] = Field(default_factory=lambda: [0], min_length=1, description="D values (0: no RFT)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="Seeds (compression and RFT)")
    rft: RFTConfig = Field(default_factory=RFTConfig, description="RFT settings (samples come from rft_samples)")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation settings")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="Runtime measurement")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: str = Field("auto", description="auto, float32, bfloat16, float16")
    threads: int | None = Field(None, ge=1, description="torch threads per unit (fix it for bit-identical reruns)")
    trust_remote_code: bool = Field(False, description="Allow custom modelling code")
    store: str = Field("complaw_results/results.db", description="SQLite results store")
    report: str | None = Field("reports/{name}", description="Report directory ({name} = sweep name); null: none")
    laws: LawSettings = Field(default_factory=LawSettings, description="Laws fitted after the sweep")
    cpus_per_unit: float = Field(1.0, gt=0, description="CPUs a unit declares to Ray")
    gpus_per_unit: float = Field(0.0, ge=0, description="GPUs a unit declares to Ray")

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, v):
        return [{"name": m} if isinstance(m, str) else m for m in v]

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v):
        bad = [r for r in v if not 0 <= r < 1]
        if bad:
            raise _invalid(f"ratio {bad[0]} outside [0, 1); give compression ratios such as 0.3")
        return _unique(v, "ratio")

    @field_validator("models", "seeds")
    @classmethod
    def _no_repeats(cls, v, info):
        return _unique(v, info.field_name.rstrip("s"))

    @field_validator("report")
    @classmethod
    def _report(cls, v):
        if v is None:
            return v
        try:
            v.format(name="sweep")
        except (KeyError, IndexError, ValueError) as err:
            raise _invalid(f"{v!r}: the only placeholder is {{name}} (the sweep's name); got {err}") from None
        return v

    @field_validator("rft_samples")
    @classmethod
    def _d(cls, v):
        if any(d < 0 for d in v):
            raise _invalid("rft_samples must be ≥ 0")
        return sorted(set(v))

    def report_dir(self) -> Path | None:
        from complaw.models.io import safe_name

        return Path(self.report.format(name=safe_name(self.name))) if self.report else None

    def experiment(self, model: str, method: SweepMethod, ratio: float, d: int, seed: int) -> ExperimentConfig:
        return ExperimentConfig(
            model=model, method=method.name, ratio=ratio, method_options=method.options,
            calibration=method.calibration, seed=seed, rft=self.rft.model_copy(update={"rft_samples": d, "seed": seed}),
            eval=self.eval, runtime=self.runtime, device=self.device, dtype=self.dtype,
            trust_remote_code=self.trust_remote_code)

    def units(self) -> list[Unit]:
        """One unit per (model, method, ratio, seed), holding one experiment per D."""
        out = []
        for model in self.models:
            for method in self.methods:
                for ratio in self.ratios:
                    for seed in self.seeds:
                        cfgs = [self.experiment(model, method, ratio, d, seed) for d in self.rft_samples]
                        out.append(Unit(model, method.name, ratio, seed, cfgs))
        return out


@dataclass(frozen=True)
class Unit:
    """Compress once, evaluate at D = 0, then recover for every D: one record per config."""

    model: str
    method: str
    ratio: float
    seed: int
    configs: list[ExperimentConfig]

    @property
    def label(self) -> str:
        return f"{self.model} {self.method} r={self.ratio:g} seed={self.seed}"

    @property
    def hashes(self) -> list[str]:
        return [c.config_hash() for c in self.configs]


PRESETS = ("quick", "demo", "real-quick", "real")


def _unique(values: list, what: str) -> list:
    """A list without repeats: a repeated model, ratio or seed would run the same experiments twice."""
    seen = set()
    for v in values:
        if v in seen:
            raise _invalid(f"{what} {v!r} is listed twice; list each once")
        seen.add(v)
    return values


def _invalid(message: str) -> PydanticCustomError:
    """A validator's error whose message is shown as it is (a ValueError's gets "Value error, " before it)."""
    return PydanticCustomError("spec", message)


def _law_form(name: str):
    """The law form ``name`` (one line naming the known ones when it is unknown). The law stage comes after the
    sweep, so its registry is looked up by name, as models.io looks up the zoo: no import edge runs back."""
    return importlib.import_module("complaw.laws.forms").get_form(name)


def check_spec(spec: SweepSpec, where: str) -> SweepSpec:
    """Every value of ``spec`` checked before any work — the grid's size, each model, method (its options in
    range), seed and D, the settings of every experiment (:func:`~complaw.recipe.check_settings`), the threads,
    the law settings — each problem one :class:`ComplawError` line starting with ``where``."""
    if not spec.name.strip() or len(spec.name) > MAX_NAME:
        raise ComplawError(f"{where}: name {spec.name[:40]!r}: give the sweep a name of 1 to {MAX_NAME} characters")
    for model in spec.models:
        if not model.strip():
            raise ComplawError(f"{where}: models: empty model name {model!r}; give zoo:NAME, real:NAME, a .gguf "
                               "file, a checkpoint directory or a hub id")
    n = len(spec.models) * len(spec.methods) * len(spec.ratios) * len(spec.seeds) * len(spec.rft_samples)
    if n > MAX_EXPERIMENTS:
        raise ComplawError(f"{where}: {n:,} experiments (models × methods × ratios × seeds × rft_samples), at most "
                           f"{MAX_EXPERIMENTS:,}; each takes minutes — split the grid into specs sharing one store")
    for seed in spec.seeds:
        checks.bounded(seed, f"{where}: seeds: seed", Bound(0, MAX_SEED, "a seed every RNG accepts", integer=True))
    for d in spec.rft_samples:
        checks.bounded(d, f"{where}: rft_samples: D", Bound(0, MAX_RFT_SAMPLES, "recovery samples; ten million is "
                                                              "beyond any recovery run", integer=True))
    if spec.threads is not None:
        cores = checks.machine_cores()
        checks.bounded(spec.threads, f"{where}: threads", Bound(1, cores, f"torch threads per unit, at most this "
                                                                      f"machine's {cores} cores", integer=True))
    checks.bounded(spec.cpus_per_unit, f"{where}: cpus_per_unit", Bound(0, 4096, "CPUs a unit declares to Ray",
                                                                        lo_open=True))
    checks.bounded(spec.gpus_per_unit, f"{where}: gpus_per_unit", Bound(0, 1024, "GPUs a unit declares to Ray"))
    law = spec.laws
    checks.bounded(law.bootstrap, f"{where}: laws.bootstrap", Bound(0, MAX_BOOTSTRAP, "bootstrap resamples of "
                                                                    "each fit (0: none)", integer=True))
    checks.bounded(law.d_scale, f"{where}: laws.d_scale", Bound(0, 1e100, "raw samples per law unit of D, e.g. 1",
                                                                lo_open=True))
    for sigma in law.sigmas:
        checks.bounded(sigma, f"{where}: laws.sigmas: sigma", Bound(0, 1, "a target retention such as 0.9",
                                                                    lo_open=True, hi_open=True))
    if not law.forms:
        raise ComplawError(f"{where}: laws.forms: empty; name at least one law form, e.g. sengupta2025")
    for form in _unique_or_raise(law.forms, "law form", where):
        try:
            _law_form(form)
        except ComplawError as err:
            raise ComplawError(f"{where}: laws.forms: {err}") from None
    if not law.d_unit.strip():
        raise ComplawError(f"{where}: laws.d_unit: empty; name the unit of D, e.g. samples")
    if checks.unit_parts(law.d_unit) is None:  # the sweep's report reads its store, whose D it converts to this unit
        raise ComplawError(f"{where}: laws.d_unit {law.d_unit!r}: the store holds D in samples and tokens; name "
                           f"one of {checks.STORE_UNITS}")
    # one experiment of every (model, method) at the largest D: the settings every experiment shares
    for method in spec.methods:
        try:
            check_options(method.name, method.options)
        except ComplawError as err:
            raise ComplawError(f"{where}: methods: {err}" if str(err).startswith("method ") else
                               f"{where}: methods: {method.name}: {err}") from None
    names = {"rft.rft_samples": "rft_samples", "seed": "seeds", "ratio": "ratios", "rft.seed": "seeds"}
    for model in spec.models:
        for method in spec.methods:
            try:
                cfg = spec.experiment(model, method, spec.ratios[0], spec.rft_samples[-1], spec.seeds[0])
            except ValidationError as err:
                raise from_validation(err, where) from None
            check_settings(cfg, where, names)
    return spec


def _unique_or_raise(values: list, what: str, where: str) -> list:
    try:
        return _unique(values, what)
    except PydanticCustomError as err:
        raise ComplawError(f"{where}: {err.message()}") from None


def load_spec(source: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read a spec file (or a preset name: quick, demo, real-quick, real) and apply ``key=value`` overrides;
    every value is checked (:func:`check_spec`) before anything is loaded or written."""
    text = str(source)
    if text in PRESETS:
        raw = resources.files("complaw.sweep.presets").joinpath(f"{text}.yaml").read_text()
        tree, where = read_tree(text, what="spec", text=raw, where=f"preset {text}")
    else:
        if Path(text).is_dir():
            raise ComplawError(f"spec {text!r}: is a directory; give a YAML spec file or a preset "
                               f"({', '.join(PRESETS)})")
        if not Path(text).is_file():
            raise ComplawError(f"spec {text!r}: no such file; give a YAML spec or a preset ({', '.join(PRESETS)})")
        tree, where = read_tree(text, what="spec")
    apply_overrides(tree, overrides, example="ratios=[0.1,0.3] or rft.lr=1e-3")
    try:
        spec = SweepSpec.model_validate(tree)
    except ValidationError as err:
        raise from_validation(err, where) from None
    return check_spec(spec, where)
