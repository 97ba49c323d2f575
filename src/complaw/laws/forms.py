"""Compression-law forms: small declarative objects, registered by name.

Every form here is log-linear: ``log(target) - offset = intercept + Σ θ_j · x_j(column_j)``, where each
*term* names its parameter, the data column it reads, the transform to log space and its role:

- ``base``: the uncompressed model's metric (``L0``) or runtime (``S0``);
- ``compression``: the ratio ``r`` (hurts a metric, helps a runtime);
- ``recovery``: the RFT data ``D`` (helps).

From the roles the form derives its sign (feasibility) conditions for either metric direction, the
retention it predicts, and the inverses the decisions need (critical ratio, minimum D).

    >>> form = get_form("sengupta2025")          # L = L0^α (1+r)^β (1 + 1/(D+ε))^γ, no intercept
    >>> get_form("sengupta2025+1").intercept     # the same with an intercept
    True
    >>> get_form("pruning-law+0").intercept      # pruning law without its P0
    False

Names: the registry keys (``complaw forms`` lists them); a suffix ``+1`` adds an intercept, ``+0``
removes it (R's formula notation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from complaw.errors import ComplawError
from complaw.registry import Registry

HIGHER = "higher"  # higher is better (accuracy)
LOWER = "lower"  # lower is better (loss, perplexity, runtime)
DIRECTIONS = (HIGHER, LOWER)


@dataclass(frozen=True)
class DUnit:
    """The unit of recovery data D the law sees: ``D_law = D_raw / scale``.

    The paper's factor ``1 + 1/(D+ε)`` is ≈ 1 for every D ≫ 1, so the unit decides whether γ measures
    anything beyond "RFT or not". It is stored with every fit.
    """

    name: str = "samples"
    scale: float = 1.0
    eps: float = 1.0

    def __post_init__(self):
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ComplawError(f"D scale {self.scale}: must be a positive number (raw D units per law unit)")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ComplawError(f"epsilon {self.eps}: must be > 0 (the paper uses 1)")


@dataclass(frozen=True)
class Transform:
    """A map from a raw column value to log space, with its inverse and limits."""

    label: str  # e.g. "log(1+r)"
    fn: Callable[[np.ndarray, DUnit], np.ndarray]
    inverse: Callable[[float, DUnit], float]
    increasing: bool  # is x increasing in the raw value?
    at_inf: Callable[[DUnit], float] | None = None  # limit of x as the raw value → ∞ (recovery terms)
    domain: tuple[float, float] = (0.0, math.inf)  # raw values allowed: [lo, hi)


def _log(v, u):
    return np.log(v)


def _log1p_r(v, u):
    return np.log1p(v)


def _log1m_r(v, u):
    return np.log1p(-np.asarray(v, dtype=float))


def _inv_d(v, u):
    # log(1 + 1/(D/scale + ε)), the paper's recovery factor
    return np.log1p(1.0 / (np.asarray(v, dtype=float) / u.scale + u.eps))


def _sat_d(v, u):
    # log(1 + D/(D + ε)), the talk's saturating recovery factor
    d = np.asarray(v, dtype=float) / u.scale
    return np.log1p(d / (d + u.eps))


def _expm1(x: float) -> float:
    """exp(x) − 1 that saturates at ∞ instead of overflowing (bootstrap draws can be extreme)."""
    return math.expm1(x) if x < 700 else math.inf


def _inv_inv_d(x, u):
    k = _expm1(x)  # 1/(D+ε)
    return (1.0 / k - u.eps) * u.scale if k > 0 else math.inf


def _inv_sat_d(x, u):
    q = _expm1(x)  # D/(D+ε) in [0, 1)
    return (q * u.eps / (1.0 - q)) * u.scale if q < 1 else math.inf


LOG = Transform("log", _log, lambda x, u: _expm1(x) + 1.0, True, domain=(0.0, math.inf))
LOG1P_R = Transform("log(1+r)", _log1p_r, lambda x, u: _expm1(x), True, domain=(0.0, 1.0))
LOG1M_R = Transform("log(1-r)", _log1m_r, lambda x, u: -_expm1(x), False, domain=(0.0, 1.0))
INV_D = Transform("log(1+1/(D+ε))", _inv_d, _inv_inv_d, False, at_inf=lambda u: 0.0)
SAT_D = Transform("log(1+D/(D+ε))", _sat_d, _inv_sat_d, True, at_inf=lambda u: math.log(2.0))


@dataclass(frozen=True)
class Term:
    """One factor of a law: parameter ``param`` multiplies ``transform(column)`` in log space."""

    param: str
    column: str
    transform: Transform
    role: str  # "base" | "compression" | "recovery"

    def required_sign(self, direction: str, effect: str) -> int:
        """+1 or −1: the sign θ must have for the factor to act as ``effect`` ("harm"/"help")."""
        s = 1 if direction == HIGHER else -1
        mono = 1 if self.transform.increasing else -1
        want = 1 if effect == "help" else -1
        return want * s * mono


@dataclass(frozen=True)
class LawForm:
    """A log-linear compression law.

    Attributes:
        name: registry name.
        formula: human-readable formula.
        target: the column being predicted (``L`` metrics, ``S`` runtimes).
        terms: the factors, in parameter order.
        intercept: whether an intercept (named ``intercept_name``) is fitted.
        offset_column: a column whose log is subtracted from log(target) with coefficient 1
            (``L0`` for the laws of L/L0), or None.
        compression_effect: "harm" for metrics (compression lowers quality), "help" for runtimes.
        fixed_direction: the metric direction the form always has (``lower`` for runtimes), or None.
        reference: where the form comes from.
    """

    name: str
    formula: str
    target: str
    terms: tuple[Term, ...]
    intercept: bool = False
    intercept_name: str = "log_c"
    offset_column: str | None = None
    compression_effect: str = "harm"
    fixed_direction: str | None = None
    reference: str = ""
    default_intercept: bool = field(default=False, compare=False)

    # --- structure -----------------------------------------------------------------------------
    @property
    def param_names(self) -> list[str]:
        names = [t.param for t in self.terms]
        return ([self.intercept_name] if self.intercept else []) + names

    @property
    def columns(self) -> list[str]:
        """Data columns the form reads (target first)."""
        cols = [self.target] + [t.column for t in self.terms]
        if self.offset_column:
            cols.append(self.offset_column)
        return list(dict.fromkeys(cols))

    def term(self, role: str) -> Term | None:
        for t in self.terms:
            if t.role == role:
                return t
        return None

    def has_base(self) -> bool:
        return self.offset_column is not None or self.term("base") is not None

    def with_intercept(self, on: bool) -> LawForm:
        if on == self.intercept:
            return self
        suffix = "+1" if on else "+0"
        base = self.name.split("+")[0]
        name = base if on == self.default_intercept else base + suffix
        return replace(self, intercept=on, name=name)

    def direction_for(self, direction: str | None) -> str:
        if self.fixed_direction:
            return self.fixed_direction
        if direction not in DIRECTIONS:
            raise ComplawError(f"metric direction {direction!r}: give 'higher' (accuracy) or 'lower' (loss)")
        return direction

    # --- design ---------------------------------------------------------------------------------
    def x_matrix(self, data, unit: DUnit) -> np.ndarray:
        """The design matrix in log space (intercept column first when fitted)."""
        cols = [t.transform.fn(data[t.column].to_numpy(dtype=float), unit) for t in self.terms]
        if self.intercept:
            cols.insert(0, np.ones(len(data)))
        return np.column_stack(cols) if cols else np.empty((len(data), 0))

    def offset(self, data) -> np.ndarray | float:
        """log of the offset column (0 when the form has none)."""
        if self.offset_column:
            return np.log(data[self.offset_column].to_numpy(dtype=float))
        return 0.0

    def design(self, data, unit: DUnit) -> tuple[np.ndarray, np.ndarray]:
        """(y, X): the log-space response (offset removed) and design for a validated DataFrame."""
        y = np.log(data[self.target].to_numpy(dtype=float)) - self.offset(data)
        return y, self.x_matrix(data, unit)

    def predict_log(self, params: np.ndarray, data, unit: DUnit) -> np.ndarray:
        """log of the predicted target (offset added back)."""
        return self.x_matrix(data, unit) @ np.asarray(params, dtype=float) + self.offset(data)

    # --- sign conditions --------------------------------------------------------------------------
    def sign_conditions(self, direction: str) -> dict[str, int]:
        """Required sign per parameter (paper §3.1): compression hurts (or speeds up), RFT helps."""
        direction = self.direction_for(direction)
        out = {}
        for t in self.terms:
            if t.role == "compression":
                out[t.param] = t.required_sign(direction, self.compression_effect)
            elif t.role == "recovery":
                out[t.param] = t.required_sign(direction, "help")
        return out

    def describe_conditions(self, direction: str) -> str:
        conds = self.sign_conditions(direction)
        return ", ".join(f"{p} {'>' if s > 0 else '<'} 0" for p, s in conds.items()) or "none"


#: The law forms by name (``complaw forms`` lists them, in registration order).
FORMS: Registry[LawForm] = Registry("law form", ordered=True)


def register_form(form: LawForm) -> LawForm:
    """Register ``form`` under its name (a second form of the same name raises)."""
    form = replace(form, default_intercept=form.intercept)
    FORMS.register(form.name, form, help=form.formula)
    return form


def available_forms() -> dict[str, LawForm]:
    return {name: FORMS.get(name) for name in FORMS.names()}


def get_form(name: str | LawForm) -> LawForm:
    """A registered form by name; ``name+1`` / ``name+0`` toggles the intercept."""
    if isinstance(name, LawForm):
        return name
    base, _, suffix = str(name).strip().partition("+")
    if base not in FORMS or suffix not in ("", "0", "1"):
        raise ComplawError(
            f"form {name!r}: unknown law form; available: {', '.join(FORMS.names())} "
            "(append +1 for an intercept, +0 for none)"
        )
    form = FORMS.get(base)
    if suffix:
        form = form.with_intercept(suffix == "1")
    return form


# --- the registry -----------------------------------------------------------------------------------
_L0 = Term("alpha", "L0", LOG, "base")
_R = Term("beta", "r", LOG1P_R, "compression")
_D = Term("gamma", "D", INV_D, "recovery")

register_form(LawForm(
    name="sengupta2025",
    formula="L = L0^alpha * (1+r)^beta * (1 + 1/(D+eps))^gamma",
    target="L", terms=(_L0, _R, _D),
    reference="Sengupta, Chaudhary, Chakraborty 2025 (arXiv 2504.04342 v1), Eq. 1",
))

# Ablations: every non-empty proper subset of the three factors (Eq. 2 is the one without D).
for keep in (("L0", "r"), ("L0", "D"), ("r", "D"), ("L0",), ("r",), ("D",)):
    terms = tuple(t for t in (_L0, _R, _D) if t.column in keep)
    parts = {"L0": "L0^alpha", "r": "(1+r)^beta", "D": "(1 + 1/(D+eps))^gamma"}
    register_form(LawForm(
        name="sengupta2025-" + "-".join(keep),
        formula="L = " + " * ".join(parts[k] for k in keep),
        target="L", terms=terms,
        reference="ablation of Sengupta et al. 2025 Eq. 1" + (" (Eq. 2)" if keep == ("L0", "r") else ""),
    ))

register_form(LawForm(
    name="pruning-law",
    formula="L = L0 * P0 * (1-r)^alpha",
    target="L", terms=(Term("alpha", "r", LOG1M_R, "compression"),),
    intercept=True, intercept_name="log_P0", offset_column="L0",
    reference="Sengupta et al. 2025, v2 (one law per task/metric)",
))

register_form(LawForm(
    name="talk",
    formula="L = L0 * P0 * (1-r)^alpha * (1 + D/(D+eps))^beta",
    target="L",
    terms=(Term("alpha", "r", LOG1M_R, "compression"), Term("beta", "D", SAT_D, "recovery")),
    intercept=True, intercept_name="log_P0", offset_column="L0",
    reference="Chakraborty, 'Enough of Scaling Laws!' talk (seed 003)",
))

register_form(LawForm(
    name="speed",
    formula="S = S0^a * (1+r)^b",
    target="S",
    terms=(Term("a", "S0", LOG, "base"), Term("b", "r", LOG1P_R, "compression")),
    compression_effect="help", fixed_direction=LOWER,
    reference="Sengupta et al. 2025 §5 and the talk (a = 1.0, b = -0.67)",
))

register_form(LawForm(
    name="speed-ratio",
    formula="S = S0 * (1+r)^b",
    target="S",
    terms=(Term("b", "r", LOG1P_R, "compression"),),
    offset_column="S0", compression_effect="help", fixed_direction=LOWER,
    reference="the speed law with a = 1: the speedup S0/S = (1+r)^(-b) does not depend on S0, so one "
              "model's paired runtimes identify it",
))
