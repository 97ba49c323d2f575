"""Held-out validation schemes."""

import pandas as pd
import pytest

from complaw.errors import ComplawError
from complaw.laws import SCHEMES, simulate, validate

TRUTH = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


@pytest.fixture
def table():
    a = simulate("sengupta2025", TRUTH, seed=1).assign(method="prunenet")
    b = simulate("sengupta2025", TRUTH, seed=2).assign(method="slicegpt")
    df = pd.concat([a, b], ignore_index=True)
    df["N"] = df["model"].str[1:].astype(int).map(lambda i: 10 ** (8 + i / 2))
    return df


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_predict_held_out_rows_well_when_the_law_is_true(table, scheme):
    v = validate(table, "sengupta2025", scheme, direction="higher")
    assert v.n_test > 0 and v.median_are < 0.03 and v.rating == "good"
    assert all(f.n_test > 0 and not f.skipped for f in v.folds)
    expected = {"leave-one-model-out": 5, "small-to-large": 1, "leave-one-ratio-out": 10, "leave-one-method-out": 2}
    assert len(v.folds) == expected[scheme]


def test_wrong_law_validates_badly(table):
    # a law without the ratio term cannot predict held-out ratios
    v = validate(table, "sengupta2025-L0-D", "leave-one-ratio-out", direction="higher")
    assert v.max_are > 0.15


def test_missing_columns_are_clear(table):
    with pytest.raises(ComplawError, match="needs column 'N'"):
        validate(table.drop(columns=["N"]), "sengupta2025", "small-to-large", direction="higher")
    with pytest.raises(ComplawError, match="at least 2"):
        validate(table[table.method == "prunenet"], "sengupta2025", "leave-one-method-out", direction="higher")
    with pytest.raises(ComplawError, match="unknown"):
        validate(table, "sengupta2025", "leave-one-out", direction="higher")
