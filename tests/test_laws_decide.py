"""Decisions: the paper's worked example, the speed law, D_min round trips, regimes and the planner."""

import math

import numpy as np
import pytest

from complaw.decide import CostModel, Law, critical_ratio, min_rft_data, plan, speed_law, speedup
from complaw.laws import DUnit, fit, simulate

PAPER = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


def test_paper_worked_example():
    law = Law.from_params("sengupta2025", direction="higher", **PAPER)
    d = critical_ratio(law, 0.8)
    assert d.value == pytest.approx(0.208, abs=5e-4)
    assert d.value == pytest.approx(0.8 ** (1 / -1.18) - 1, rel=1e-12)
    assert d.regime == "critical"


def test_lower_is_better_mirrors_higher():
    hi = Law.from_params("sengupta2025", direction="higher", **PAPER)
    lo = Law.from_params("sengupta2025", direction="lower", alpha=0.98, beta=1.18, gamma=0.14)
    assert critical_ratio(lo, 0.8).value == pytest.approx(critical_ratio(hi, 0.8).value)
    assert min_rft_data(lo, 0.15, 0.8).value == pytest.approx(min_rft_data(hi, 0.15, 0.8).value)


def test_two_regimes_of_theorem_3_1():
    law = Law.from_params("sengupta2025", direction="higher", alpha=1.0, beta=-0.3, gamma=-0.1)
    b = -0.3
    below = critical_ratio(law, 0.5 * 2**b)  # σ < 2^b: everything recoverable
    above = critical_ratio(law, 0.5 * (2**b + 1))  # σ in [2^b, 1)
    assert below.regime == "all-recoverable" and below.value >= 1
    assert above.regime == "critical" and 0 < above.value < 1
    # every r is recoverable in the first regime: a finite D exists even at r = 0.99
    assert math.isfinite(min_rft_data(law, 0.99, 0.5 * 2**b).value)
    # and nothing is past r_crit in the second
    assert min_rft_data(law, above.value + 1e-6, 0.5 * (2**b + 1)).regime == "unreachable"


@pytest.mark.parametrize("direction", ["higher", "lower"])
@pytest.mark.parametrize("sigma", [0.7, 0.8, 0.9])
def test_min_data_round_trips(direction, sigma):
    sign = 1 if direction == "higher" else -1
    law = Law.from_params("sengupta2025", direction=direction, unit=DUnit("k-samples", 1000.0, 1.0),
                          alpha=1.0, beta=sign * -1.18, gamma=sign * -0.14)
    r_crit = critical_ratio(law, sigma).value
    for r in np.linspace(0.0, r_crit * 0.98, 6):
        d = min_rft_data(law, r, sigma)
        if d.regime == "finite":
            assert law.retention(r, d.value)[()] == pytest.approx(sigma, rel=1e-9)
            assert law.retention(r, d.value * 0.9)[()] < sigma
        else:
            assert d.regime == "no-rft-needed" and law.retention(r, 0.0)[()] >= sigma


def test_min_data_closed_form_of_the_spec():
    law = Law.from_params("sengupta2025", direction="higher", **PAPER)
    r, sigma = 0.15, 0.8
    K = (sigma * (1 + r) ** 1.18) ** (1 / -0.14)
    assert min_rft_data(law, r, sigma).value == pytest.approx(1 / (K - 1) - 1, rel=1e-10)


def test_talk_form_decisions_round_trip():
    law = Law.from_params("talk", direction="higher", log_P0=-0.02, alpha=0.5, beta=0.15)
    rc = critical_ratio(law, 0.85)
    assert 0 < rc.value < 1
    d = min_rft_data(law, rc.value * 0.7, 0.85)
    assert d.regime == "finite"
    assert law.retention(rc.value * 0.7, d.value)[()] == pytest.approx(0.85, rel=1e-9)


def test_speed_law_of_the_talk():
    s = speed_law(-0.67)
    assert speedup(s, 0.3).value == pytest.approx(1.19, abs=0.005)
    assert speedup(s, 0.6).value == pytest.approx(1.37, abs=0.005)
    assert speedup(s, 0.3).extra["runtime_ratio"] == pytest.approx(0.839, abs=0.001)


def test_infeasible_signs_are_reported_not_decided():
    law = Law.from_params("sengupta2025", direction="higher", alpha=1.0, beta=0.3, gamma=-0.1)
    d = critical_ratio(law, 0.8)
    assert d.regime == "infeasible" and math.isnan(d.value) and "sign conditions" in d.message


def test_decisions_carry_bootstrap_intervals():
    df = simulate("sengupta2025", PAPER, seed=0)
    law = Law.from_fit(fit(df, "sengupta2025", direction="higher", bootstrap=300))
    d = critical_ratio(law, 0.8)
    lo, hi = d.interval
    assert lo < d.value < hi and lo < 0.2082 < hi
    m = min_rft_data(law, 0.1, 0.8)
    assert m.interval is not None


def test_planner_min_cost_meets_target_and_lies_on_frontier():
    law = Law.from_params("sengupta2025", direction="higher", **PAPER)
    cost = CostModel(rft_price=0.01, compression_cost=1.0, serving_volume=1e4, base_runtime_s=0.01, price_per_s=1.0)
    p = plan(law, sigma=0.8, cost=cost, speed=speed_law(-0.67))
    o = p.optimum
    assert o["retention"] >= 0.8 - 1e-9 and 0 < o["r"] < critical_ratio(law, 0.8).value
    # brute force over a fine grid cannot find anything cheaper that meets σ
    for r in np.linspace(0, 0.3, 61):
        d = min_rft_data(law, r, 0.8)
        if math.isfinite(d.value):
            rr = 1 / speedup(speed_law(-0.67), r).value
            assert cost.total(r, d.value, rr) >= o["cost"] - 1e-6
    f = p.frontier
    assert (np.diff(f["cost"]) >= 0).all() and (np.diff(f["retention"]) > 0).all()


def test_planner_budget_mode_and_intervals():
    df = simulate("sengupta2025", PAPER, seed=0)
    law = Law.from_fit(fit(df, "sengupta2025", direction="higher", bootstrap=100))
    p = plan(law, budget=5.0, cost=CostModel(rft_price=0.5))
    assert p.optimum["cost"] <= 5.0 + 1e-9
    assert p.intervals["retention"][0] <= p.optimum["retention"] <= p.intervals["retention"][1]
    with pytest.raises(Exception, match="exactly one"):
        plan(law, sigma=0.8, budget=1.0)


def test_extreme_parameters_do_not_overflow():
    # bootstrap draws of a barely identified law can have a compression exponent near 0
    law = Law.from_params("sengupta2025", direction="higher", alpha=1.0, beta=-1e-9, gamma=-0.1)
    d = critical_ratio(law, 0.8)
    assert d.regime == "all-recoverable" and math.isinf(d.value)
    assert critical_ratio(Law.from_params("sengupta2025", direction="higher", alpha=1, beta=0.0, gamma=-0.1),
                          0.8).regime == "infeasible"
    m = min_rft_data(Law.from_params("sengupta2025", direction="higher", alpha=1, beta=-1.0, gamma=-1e-12), 0.3, 0.8)
    assert m.regime == "unreachable"
