"""Synthetic results drawn from a law with known parameters — for tests, benchmarks and sanity checks.

    >>> df = simulate("sengupta2025", {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}, seed=0)
    >>> fit(df, "sengupta2025", direction="higher").coef   # ≈ the truth
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from complaw.laws.forms import DUnit, LawForm, get_form


def simulate(
    form: str | LawForm,
    params: dict[str, float],
    *,
    base_values: tuple[float, ...] = (0.40, 0.48, 0.55, 0.62, 0.70),
    ratios: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    d_values: tuple[float, ...] = (0.0, 1.0, 4.0, 16.0),
    noise: float = 0.02,
    model_effect: float = 0.0,
    unit: DUnit | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (base model, r, D) with ``L`` drawn from ``form`` × log-normal noise.

    Args:
        form: the law generating the data.
        params: its true parameters (``form.param_names``).
        base_values: L0 (or S0) of each base model; models are named ``m0, m1, …``.
        ratios, d_values: the design.
        noise: standard deviation of the i.i.d. log-space noise.
        model_effect: standard deviation of a log-space effect shared by a model's rows.
        unit: the D unit of the law.
        seed: random seed.
    """
    form = get_form(form)
    unit = unit or DUnit()
    rng = np.random.default_rng(seed)
    base_col = "S0" if form.target == "S" else "L0"
    rows = [{"model": f"m{i}", base_col: b, "r": r, "D": d}
            for i, b in enumerate(base_values) for r in ratios for d in d_values]
    df = pd.DataFrame(rows)
    theta = np.array([params[p] for p in form.param_names], dtype=float)
    log_y = form.predict_log(theta, df, unit)
    effects = rng.normal(0.0, model_effect, len(base_values)) if model_effect else np.zeros(len(base_values))
    log_y = log_y + effects[df["model"].str[1:].astype(int).to_numpy()] + rng.normal(0.0, noise, len(df))
    df[form.target] = np.exp(log_y)
    return df
