"""Capacity of compressed representations (SPEC §1.3, seed 002): GMSE, capacity ρ and the bridge r_eff.

**GMSE(R)** is the minimum mean squared error with which format ``R`` represents i.i.d. N(0, 1) data.

* Fixed scalar grids (``int4`` — the 16-level symmetric mid-rise grid —, ``fp4`` E2M1, ``fp8-e4m3``,
  ``fp8-e5m2``): exact integration over the Voronoi cells (thresholds at midpoints) with the grid scale
  optimised by a log-scale scan followed by bounded scalar minimisation.
* Data-dependent scales (absmax INT-k per tensor / channel / group, MXFP4, NVFP4, N:M sparsity,
  sparse-then-quantised): Monte Carlo through the exact compressor (:func:`compressor`) on ≥ 4M samples,
  with the standard error from the spread of per-row means (rows of 4096 values are independent).
* Unstructured magnitude sparsity ``s``: closed form, ``t = Φ⁻¹((1+s)/2)``,
  ``GMSE = (2Φ(t) − 1) − 2tφ(t)``.

Tensor shapes used by the Monte Carlo: a tensor is 1024 × 4096 (4M values), a channel is one row of 4096,
a group is ``g`` consecutive values of a row. **Capacity** ``ρ = L·tanh(F·log_{1/4} GMSE)^C`` (defaults
L = 1.0, F = 0.41, C = 1.39; refit with :func:`fit_capacity`); ``log_{1/4} GMSE`` is the *effective bits*,
the bit width at which the Shannon bound 4^(−b) equals GMSE. Capacities multiply across compression
types, so a combined name ``"2:4+int4-g128"`` has ρ = ρ(2:4)·ρ(int4-g128) (its joint GMSE is also
reported). The **bridge** (our proposal, validated in ``benchmarks/bench_capacity.py``):
``r_eff = 1 − (1 − r)·ρ(R)``.

    >>> gmse("sparse-0.5").value     # 0.0713
    >>> capacity("int4-g128"), r_eff("int4-g128", r=0.2)
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from complaw.errors import ComplawError

L_DEFAULT, F_DEFAULT, C_DEFAULT = 1.0, 0.41, 1.39
MC_SAMPLES = 4 * 1024 * 1024
ROW = 4096
SCALE_BITS = 16  # bits of a stored fp16/bf16 scale, counted in the nominal bit width

# ----------------------------------------------------------------------------------------- grids


def midrise_grid(bits: int) -> np.ndarray:
    """The 2^bits-level symmetric mid-rise grid ±(k + 1/2), k = 0 … 2^(bits−1) − 1."""
    half = np.arange(2 ** (bits - 1)) + 0.5
    return np.concatenate([-half[::-1], half])


def fp_grid(exp_bits: int, man_bits: int, bias: int, *, ieee_special: bool) -> np.ndarray:
    """All finite values of a minifloat (subnormals included), symmetric, sorted, ±0 merged.

    ``ieee_special``: the top exponent is reserved for inf/NaN (E5M2); otherwise only the all-ones
    pattern is NaN (E4M3 "fn" style, max 448) — for E2M1 nothing is reserved (max 6).
    """
    vals = []
    top = 2**exp_bits - 1
    for e in range(2**exp_bits):
        for m in range(2**man_bits):
            if ieee_special and e == top:
                continue
            if not ieee_special and exp_bits == 4 and e == top and m == 2**man_bits - 1:
                continue  # E4M3: S.1111.111 is NaN
            if e == 0:
                v = (m / 2**man_bits) * 2.0 ** (1 - bias)
            else:
                v = (1 + m / 2**man_bits) * 2.0 ** (e - bias)
            vals.append(v)
    pos = np.unique(np.array(vals))
    return np.unique(np.concatenate([-pos, pos]))


FP4_GRID = fp_grid(2, 1, 1, ieee_special=False)  # {0, .5, 1, 1.5, 2, 3, 4, 6} with sign
FP8_E4M3_GRID = fp_grid(4, 3, 7, ieee_special=False)  # max 448
FP8_E5M2_GRID = fp_grid(5, 2, 15, ieee_special=True)  # max 57344


def grid_mse_exact(grid: np.ndarray, scale: float) -> float:
    """E[(X − Q(X))²] for X ~ N(0,1) and nearest-point quantisation to ``scale·grid`` (exact)."""
    c = np.sort(np.asarray(grid, float)) * scale
    edges = np.concatenate([[-np.inf], (c[1:] + c[:-1]) / 2, [np.inf]])
    a, b = edges[:-1], edges[1:]
    pa, pb = stats.norm.pdf(a), stats.norm.pdf(b)
    dphi = stats.norm.cdf(b) - stats.norm.cdf(a)
    with np.errstate(invalid="ignore"):
        apa, bpb = a * pa, b * pb
    apa[~np.isfinite(a)] = 0.0
    bpb[~np.isfinite(b)] = 0.0
    # ∫(x−c)²φ = (1 + c²)ΔΦ − [xφ]_a^b − 2c(φ(a) − φ(b))
    return float(np.sum((1 + c**2) * dphi - (bpb - apa) - 2 * c * (pa - pb)))


def optimal_grid_scale(grid: np.ndarray) -> tuple[float, float]:
    """(scale, mse) minimising :func:`grid_mse_exact`: a log scan, then bounded refinement."""
    gmax = float(np.max(np.abs(grid)))
    logs = np.linspace(np.log(0.5 / gmax), np.log(64.0 / gmax), 600)
    vals = np.array([grid_mse_exact(grid, math.exp(s)) for s in logs])
    i = int(np.argmin(vals))
    lo, hi = logs[max(i - 1, 0)], logs[min(i + 1, len(logs) - 1)]
    res = optimize.minimize_scalar(lambda s: grid_mse_exact(grid, math.exp(s)), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-10})
    if res.fun < vals[i]:
        return math.exp(res.x), float(res.fun)
    return math.exp(logs[i]), float(vals[i])


def round_to_grid(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Nearest point of the sorted ``grid`` for every element of ``x`` (values beyond saturate)."""
    g = np.sort(grid)
    mids = (g[1:] + g[:-1]) / 2
    return g[np.searchsorted(mids, x)]


# ------------------------------------------------------------------------------- compressors


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[-1] % size:
        raise ComplawError(f"group size {size}: must divide the row length {x.shape[-1]}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // size, size)


def quant_int_absmax(x: np.ndarray, bits: int, group: int | None) -> np.ndarray:
    """Symmetric round-to-nearest INT-k with absmax scale per group (``group=None``: the whole array).

    Levels are the integers in [−(2^(k−1) − 1), 2^(k−1) − 1] times ``absmax / (2^(k−1) − 1)``.
    """
    qmax = 2 ** (bits - 1) - 1
    xb = x.reshape(1, -1) if group is None else _blocks(x, group)
    amax = np.max(np.abs(xb), axis=-1, keepdims=True)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(xb / scale), -qmax, qmax) * scale
    return q.reshape(x.shape)


def quant_mxfp4(x: np.ndarray) -> np.ndarray:
    """MXFP4: blocks of 32, shared power-of-two scale 2^(⌊log2 absmax⌋ − 2), E2M1 elements (saturating)."""
    xb = _blocks(x, 32)
    amax = np.max(np.abs(xb), axis=-1, keepdims=True)
    scale = np.where(amax > 0, 2.0 ** (np.floor(np.log2(np.maximum(amax, 1e-30))) - 2), 1.0)
    return (round_to_grid(xb / scale, FP4_GRID) * scale).reshape(x.shape)


def quant_nvfp4(x: np.ndarray) -> np.ndarray:
    """NVFP4: blocks of 16, scale absmax/6 rounded to FP8 E4M3, E2M1 elements (saturating)."""
    xb = _blocks(x, 16)
    amax = np.max(np.abs(xb), axis=-1, keepdims=True)
    scale = round_to_grid(amax / 6.0, FP8_E4M3_GRID)
    scale = np.where(scale > 0, scale, 1.0)
    return (round_to_grid(xb / scale, FP4_GRID) * scale).reshape(x.shape)


def sparse_nm(x: np.ndarray, n: int, m: int) -> np.ndarray:
    """N:M sparsity: keep the ``n`` largest magnitudes of every ``m`` consecutive values."""
    xb = _blocks(x, m)
    order = np.argsort(np.abs(xb), axis=-1)
    mask = np.ones_like(xb, dtype=bool)
    np.put_along_axis(mask, order[..., : m - n], False, axis=-1)
    return (xb * mask).reshape(x.shape)


def sparse_magnitude(x: np.ndarray, s: float) -> np.ndarray:
    """Unstructured magnitude sparsity: zero the fraction ``s`` of smallest magnitudes."""
    k = int(round(s * x.size))
    if k == 0:
        return x.copy()
    thr = np.partition(np.abs(x).ravel(), k - 1)[k - 1]
    return np.where(np.abs(x) > thr, x, 0.0)


def quant_int_absmax_masked(x: np.ndarray, bits: int, group: int | None) -> np.ndarray:
    """INT-k absmax quantisation that keeps exact zeros (zeros stay zero; the sparse+quant case)."""
    q = quant_int_absmax(x, bits, group)
    return np.where(x == 0, 0.0, q)


# ---------------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class Format:
    """A compressed representation: name, kind, nominal bits per weight and how to compute GMSE."""

    name: str
    kind: str  # "grid" | "mc" | "closed" | "dense"
    bits: float  # nominal storage bits per value (scales and masks included); inf for dense
    description: str
    grid: tuple[float, ...] | None = None
    sparsity: float | None = None


@dataclass(frozen=True)
class GMSE:
    """A GMSE value with how it was obtained (``stderr`` is 0 for exact / closed-form values)."""

    format: str
    value: float
    stderr: float
    method: str
    scale: float | None = None  # optimal grid scale (fixed grids)
    samples: int = 0


def _entropy_bits(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


_INT_RE = re.compile(r"^int(\d+)(?:-(tensor|channel|g(\d+)))?$")
_SPARSE_RE = re.compile(r"^sparse-(0?\.\d+|0)$")
_NM_RE = re.compile(r"^(\d+):(\d+)$")

_FIXED = {
    "fp4": ("E2M1 FP4 grid (±{0,.5,1,1.5,2,3,4,6}), optimal scale", FP4_GRID, 4.0),
    "fp8-e4m3": ("FP8 E4M3 grid (max 448), optimal scale", FP8_E4M3_GRID, 8.0),
    "fp8-e5m2": ("FP8 E5M2 grid (max 57344), optimal scale", FP8_E5M2_GRID, 8.0),
}
_BLOCK = {
    "mxfp4": ("MXFP4: E2M1 in blocks of 32 with a shared power-of-two (E8M0) scale", 4 + 8 / 32),
    "nvfp4": ("NVFP4: E2M1 in blocks of 16 with an FP8 E4M3 scale", 4 + 8 / 16),
}

EXAMPLES = ("dense", "int4", "int8", "int4-g128", "int3-g128", "int8-channel", "int4-tensor", "fp4", "fp8-e4m3",
            "fp8-e5m2", "mxfp4", "nvfp4", "sparse-0.5", "sparse-0.7", "2:4", "2:4+int4-g128")


def get_format(name: str) -> Format:
    """Parse a format name (see :data:`EXAMPLES`); a combined name joins components with ``+``."""
    name = name.strip().lower()
    if "+" in name:
        parts = [get_format(p) for p in name.split("+")]
        bits = _combined_bits(parts)
        return Format(name, "mc", bits, " then ".join(p.description for p in parts))
    if name in ("dense", "bf16", "fp16"):
        return Format(name, "dense", math.inf, "uncompressed (GMSE 0, ρ = L)")
    if name in _FIXED:
        desc, grid, bits = _FIXED[name]
        return Format(name, "grid", bits, desc, grid=tuple(grid))
    if name in _BLOCK:
        desc, bits = _BLOCK[name]
        return Format(name, "mc", bits, desc)
    m = _INT_RE.match(name)
    if m and 2 <= int(m.group(1)) <= 16:
        k = int(m.group(1))
        if m.group(2) is None:
            return Format(name, "grid", float(k), f"{2**k}-level symmetric mid-rise INT{k} grid, optimal scale",
                          grid=tuple(midrise_grid(k)))
        if m.group(2) == "tensor":
            return Format(name, "mc", k + SCALE_BITS / (1024 * ROW), f"INT{k} absmax per tensor (1024×4096)")
        if m.group(2) == "channel":
            return Format(name, "mc", k + SCALE_BITS / ROW, f"INT{k} absmax per channel (4096)")
        g = int(m.group(3))
        if g < 1 or ROW % g:
            raise ComplawError(f"format {name!r}: group size must divide {ROW}, e.g. int4-g128")
        return Format(name, "mc", k + SCALE_BITS / g, f"INT{k} absmax per group of {g}")
    m = _SPARSE_RE.match(name)
    if m:
        s = float(m.group(1))
        if not 0 <= s < 1:
            raise ComplawError(f"format {name!r}: sparsity must lie in [0, 1)")
        return Format(name, "closed", (1 - s) * 16 + _entropy_bits(s),
                      f"unstructured magnitude sparsity {s:g} (closed form)", sparsity=s)
    m = _NM_RE.match(name)
    if m:
        n, mm = int(m.group(1)), int(m.group(2))
        if not 0 < n < mm or ROW % mm:
            raise ComplawError(f"format {name!r}: need 0 < N < M with M dividing {ROW}, e.g. 2:4")
        return Format(name, "mc", n / mm * 16 + math.log2(math.comb(mm, n)) / mm, f"{n}:{mm} structured sparsity",
                      sparsity=1 - n / mm)
    raise ComplawError(f"format {name!r}: unknown; known formats: {', '.join(EXAMPLES)} "
                       "(intK[-tensor|-channel|-gG], sparse-S, N:M, A+B)")


def _combined_bits(parts: list[Format]) -> float:
    """Bits of sparse-then-quantised: mask bits + kept fraction × the quantiser's bits."""
    keep, mask_bits, qbits = 1.0, 0.0, 16.0
    for p in parts:
        if p.sparsity is not None:
            keep *= 1 - p.sparsity
            mask_bits += p.bits - (1 - p.sparsity) * 16
        else:
            qbits = min(qbits, p.bits)
    return keep * qbits + mask_bits


def compressor(name: str):
    """The exact array compressor ``f(x) -> x̂`` of format ``name`` (rows of length 4096)."""
    fmt = get_format(name)
    if "+" in fmt.name:
        fns = [compressor(p) for p in fmt.name.split("+")]

        def chain(x):
            for i, f in enumerate(fns):
                x = _keep_zeros(f, x) if i else f(x)
            return x

        return chain
    return _COMPRESSORS[fmt.kind](fmt)


def _grid_compressor(fmt: Format):
    scale = gmse(fmt.name).scale
    grid = np.asarray(fmt.grid)
    return lambda x: round_to_grid(x / scale, grid) * scale


def _computed_compressor(fmt: Format):
    """Formats measured by Monte Carlo: block floats, N:M sparsity, absmax INT per tensor/channel/group."""
    if fmt.name in ("mxfp4", "nvfp4"):
        return quant_mxfp4 if fmt.name == "mxfp4" else quant_nvfp4
    m = _NM_RE.match(fmt.name)
    if m:
        return lambda x: sparse_nm(x, int(m.group(1)), int(m.group(2)))
    m = _INT_RE.match(fmt.name)
    bits, kind = int(m.group(1)), m.group(2)
    group = None if kind == "tensor" else ROW if kind == "channel" else int(m.group(3))
    return lambda x: quant_int_absmax(x, bits, group)


#: Format kind → the compressor of a format of that kind.
_COMPRESSORS = {
    "dense": lambda fmt: (lambda x: x.copy()),
    "grid": _grid_compressor,
    "closed": lambda fmt: (lambda x: sparse_magnitude(x, fmt.sparsity)),
    "mc": _computed_compressor,
}


def _keep_zeros(f, x):
    """Apply quantiser ``f`` to the non-zeros of ``x`` only (zeros of an earlier sparsifier stay zero).

    Absmax scales are unaffected by zeros; for fixed grids and block formats zeros map to zero anyway
    (every grid here contains 0 or is symmetric mid-rise, in which case we force them back to zero).
    """
    return np.where(x == 0, 0.0, f(x))


def gmse_monte_carlo(name: str, samples: int = MC_SAMPLES, seed: int = 0) -> GMSE:
    """GMSE of ``name`` by Monte Carlo through :func:`compressor` (standard error from row means)."""
    f = compressor(name)
    rng = np.random.default_rng(seed)
    rows = max(1, samples // ROW)
    row_means = []
    chunk = 1024  # one 1024×4096 tensor per chunk (the per-tensor scale's unit)
    for start in range(0, rows, chunk):
        x = rng.standard_normal((min(chunk, rows - start), ROW))
        row_means.append(np.mean((x - f(x)) ** 2, axis=1))
    rm = np.concatenate(row_means)
    se = float(rm.std(ddof=1) / math.sqrt(len(rm))) if len(rm) > 1 else math.nan
    return GMSE(name, float(rm.mean()), se, "monte-carlo", samples=len(rm) * ROW)


def gmse_sparse_closed(s: float) -> float:
    """Closed-form GMSE of unstructured magnitude sparsity ``s``."""
    if s <= 0:
        return 0.0
    t = stats.norm.ppf((1 + s) / 2)
    return float((2 * stats.norm.cdf(t) - 1) - 2 * t * stats.norm.pdf(t))


@functools.cache
def gmse(name: str, samples: int = MC_SAMPLES) -> GMSE:
    """GMSE of format ``name``: exact (fixed grids), closed form (unstructured sparsity) or Monte Carlo."""
    fmt = get_format(name)
    return _GMSE_BY_KIND[fmt.kind](fmt, samples)


def _grid_gmse(fmt: Format, samples: int) -> GMSE:
    scale, mse = optimal_grid_scale(np.asarray(fmt.grid))
    return GMSE(fmt.name, mse, 0.0, "exact", scale=scale)


#: Format kind → how its GMSE is had: exact, closed form or Monte Carlo.
_GMSE_BY_KIND = {
    "dense": lambda fmt, samples: GMSE(fmt.name, 0.0, 0.0, "exact"),
    "grid": _grid_gmse,
    "closed": lambda fmt, samples: GMSE(fmt.name, gmse_sparse_closed(fmt.sparsity), 0.0, "closed-form"),
    "mc": lambda fmt, samples: gmse_monte_carlo(fmt.name, samples),
}


# --------------------------------------------------------------------------------- capacity


def effective_bits(g: float) -> float:
    """log_{1/4}(GMSE): the bit width whose Shannon bound 4^(−b) equals ``g`` (inf for g = 0)."""
    return math.inf if g <= 0 else math.log(g) / math.log(0.25)


def rho_from_gmse(g: float, L: float = L_DEFAULT, F: float = F_DEFAULT, C: float = C_DEFAULT) -> float:
    """ρ = L·tanh(F·log_{1/4} GMSE)^C."""
    b = effective_bits(g)
    if math.isinf(b):
        return L
    return L * math.tanh(F * b) ** C if b > 0 else 0.0


def capacity(name: str, *, activations: str | None = None, L: float = L_DEFAULT, F: float = F_DEFAULT,
             C: float = C_DEFAULT, samples: int = MC_SAMPLES) -> float:
    """ρ of a weight format (components of ``A+B`` multiply), times ρ of an activation format if given."""
    fmt = get_format(name)
    parts = fmt.name.split("+")
    rho = 1.0
    for p in parts:
        rho *= rho_from_gmse(gmse(p, samples).value, L, F, C)
    if activations is not None:
        rho *= capacity(activations, L=L, F=F, C=C, samples=samples)
    return rho


def r_eff(name: str, r: float = 0.0, **kwargs) -> float:
    """The bridge: r_eff = 1 − (1 − r)·ρ(R)."""
    if not 0 <= r < 1:
        raise ComplawError(f"r={r}: must lie in [0, 1)")
    return 1.0 - (1.0 - r) * capacity(name, **kwargs)


def fit_capacity(gmses, rhos) -> tuple[float, float, float]:
    """Least-squares (L, F, C) of ρ = L·tanh(F·log_{1/4} GMSE)^C to observed (GMSE, ρ) pairs."""
    b = np.array([effective_bits(g) for g in gmses])
    y = np.asarray(rhos, float)

    def resid(theta):
        L, F, C = theta
        return L * np.tanh(F * b) ** C - y

    res = optimize.least_squares(resid, [L_DEFAULT, F_DEFAULT, C_DEFAULT], bounds=([0, 1e-6, 1e-3], [10, 10, 20]))
    return tuple(float(v) for v in res.x)


def describe_format(name: str, r: float = 0.0, samples: int = MC_SAMPLES) -> dict:
    """One row: format, kind, nominal bits, GMSE (± stderr), effective bits, Shannon bound, ρ, r_eff."""
    fmt = get_format(name)
    g = gmse(fmt.name, samples)
    rho = capacity(fmt.name, samples=samples)
    return {"format": fmt.name, "description": fmt.description, "method": g.method, "bits": fmt.bits,
            "gmse": g.value, "gmse_stderr": g.stderr, "effective_bits": effective_bits(g.value),
            "shannon_bound": 0.0 if math.isinf(fmt.bits) else 4.0 ** (-fmt.bits), "rho": rho,
            "r": r, "r_eff": 1.0 - (1.0 - r) * rho}
