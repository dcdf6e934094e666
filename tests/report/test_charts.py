"""The report's charts: round axis ticks that cover the data, every bar labelled, labels never cut."""

from __future__ import annotations

import math
import re

from hypothesis import example, given
from hypothesis import strategies as st

from onec import charts

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(finite, finite, st.booleans())
@example(0.0, 5e-324, False)  # a subnormal range: the step's logarithm underflowed (math domain error)
def test_ticks_are_round_and_cover_the_values(a: float, b: float, whole: bool) -> None:
    low, high = min(a, b), max(a, b)
    ticks = charts.nice_ticks(low, high, whole=whole)
    step = ticks[1] - ticks[0]
    assert ticks[0] <= low and ticks[-1] >= high
    assert 2 <= len(ticks) <= 7
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10)), step
    if whole:
        assert step >= 1


def test_every_group_of_a_bar_chart_is_labelled_even_when_many() -> None:
    landings = ["goods", "goods-receipt", "shipment", "transfer", "adjustment-up", "adjustment-down", "inventory"]
    svg = charts.grouped_bar_chart("Requests", landings, {"requests": [5, 40, 38, 9, 3, 4, 7], "retries": [0] * 7})
    for landing in landings:
        assert f">{landing}</text>" in svg


def test_a_long_reason_wraps_whole_instead_of_being_cut() -> None:
    reason = "documents shipment: unit_price: required when the line carries a total; total: must equal quantity x it"
    svg = charts.bar_chart("Rejected rows by reason", [(reason, 3.0)])
    shown = " ".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg))
    assert shown == reason and "…" not in svg
