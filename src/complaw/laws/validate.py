"""Held-out validation of a law: the honest test is prediction of experiments it never saw.

Schemes (each reports median and max absolute relative error on the held-out rows):

- ``leave-one-model-out``: fit on all base models but one, predict it (needs a ``model`` column);
- ``small-to-large``: fit on the smaller models, predict the largest (needs ``N``, model size);
- ``leave-one-ratio-out``: fit without one compression ratio, predict it;
- ``leave-one-method-out``: fit on the other compression methods, predict one (needs ``method``).

    >>> v = validate("results.csv", "sengupta2025", "leave-one-model-out", direction="higher")
    >>> v.median_are, v.max_are, v.rating

Rule of thumb from the scaling-law literature: ≤ 5% good, 5–15% usable for ranking, > 15% unreliable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from complaw.errors import ComplawError
from complaw.laws.data import LawData, as_law_data, check_direction
from complaw.laws.fit import fit
from complaw.laws.forms import LawForm, get_form

SCHEMES = ("leave-one-model-out", "small-to-large", "leave-one-ratio-out", "leave-one-method-out")
_COLUMN = {"leave-one-model-out": "model", "small-to-large": "N", "leave-one-ratio-out": "r",
           "leave-one-method-out": "method"}


@dataclass(frozen=True)
class Fold:
    held_out: str
    n_train: int
    n_test: int
    median_are: float
    max_are: float
    skipped: str = ""  # why the fold could not be fitted, if it could not


@dataclass(frozen=True)
class ValidationResult:
    scheme: str
    form: str
    folds: tuple[Fold, ...]
    n_test: int
    median_are: float
    max_are: float
    group: dict[str, str] = field(default_factory=dict)

    @property
    def rating(self) -> str:
        if not np.isfinite(self.median_are):
            return "n/a"
        return "good" if self.median_are <= 0.05 else "usable" if self.median_are <= 0.15 else "unreliable"

    def to_dict(self) -> dict:
        nan = lambda x: None if not np.isfinite(x) else float(x)  # noqa: E731
        return {"scheme": self.scheme, "form": self.form, "group": self.group, "n_test": self.n_test,
                "median_are": nan(self.median_are), "max_are": nan(self.max_are), "rating": self.rating,
                "folds": [{"held_out": f.held_out, "n_train": f.n_train, "n_test": f.n_test,
                           "median_are": nan(f.median_are), "max_are": nan(f.max_are), "skipped": f.skipped}
                          for f in self.folds]}


def _holdouts(frame, scheme: str, source: str):
    col = _COLUMN[scheme]
    if col not in frame.columns:
        what = {"model": "a base-model id", "N": "model sizes (parameters)", "r": "ratios",
                "method": "the compression method"}[col]
        raise ComplawError(f"{source}: scheme {scheme} needs column {col!r} ({what}); map it with --map {col}=COLUMN")
    if scheme == "small-to-large":
        sizes = frame["N"].astype(float)
        if sizes.nunique() < 2:
            raise ComplawError(f"{source}: scheme small-to-large needs at least 2 model sizes; found {sizes.nunique()}")
        largest = sizes.max()
        return [(f"N={largest:.4g}", (sizes == largest).to_numpy())]
    values = sorted(frame[col].unique(), key=lambda v: (str(type(v)), v))
    if len(values) < 2:
        raise ComplawError(f"{source}: scheme {scheme} needs at least 2 distinct {col!r} values; found {len(values)}")
    return [(f"{col}={v}", (frame[col] == v).to_numpy()) for v in values]


def validate(data, form: str | LawForm, scheme: str, *, direction: str | None = None,
             group: dict[str, str] | None = None, mapping=None, **fit_kwargs) -> ValidationResult:
    """Fit on all folds but one, predict the held-out rows, and pool their absolute relative errors.

    Args:
        data: a path, DataFrame or :class:`LawData` (one group).
        form: law form name or object.
        scheme: one of :data:`SCHEMES`.
        direction: metric direction (default from the table).
        **fit_kwargs: passed to :func:`~complaw.laws.fit.fit` (bootstrap is off inside folds).
    """
    if scheme not in SCHEMES:
        raise ComplawError(f"scheme {scheme!r}: unknown; use one of {', '.join(SCHEMES)} or 'all'")
    form = get_form(form)
    ld: LawData = as_law_data(data, mapping=mapping)
    if not form.fixed_direction:
        check_direction(ld, direction)
    direction = form.fixed_direction or ld.direction(direction)
    frame, _ = ld.rows_for(form, drop_invalid=fit_kwargs.get("drop_invalid", False))
    fit_kwargs = {**fit_kwargs, "bootstrap": 0}
    folds, errors = [], []
    for label, test_mask in _holdouts(frame, scheme, ld.source):
        train = LawData(frame.loc[~test_mask].reset_index(drop=True), ld.source)
        test = frame.loc[test_mask].reset_index(drop=True)
        try:
            res = fit(train, form, direction=direction, **fit_kwargs)
        except ComplawError as err:
            folds.append(Fold(label, int((~test_mask).sum()), len(test), np.nan, np.nan, str(err)))
            continue
        pred = res.predict(LawData(test, ld.source))
        are = np.abs(pred - test[form.target].to_numpy()) / np.abs(test[form.target].to_numpy())
        errors.append(are)
        folds.append(Fold(label, res.n_obs, len(test), float(np.median(are)), float(are.max())))
    pooled = np.concatenate(errors) if errors else np.array([])
    return ValidationResult(
        scheme=scheme, form=form.name, folds=tuple(folds), n_test=len(pooled),
        median_are=float(np.median(pooled)) if len(pooled) else np.nan,
        max_are=float(pooled.max()) if len(pooled) else np.nan, group=dict(group or {}),
    )
