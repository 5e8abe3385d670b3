"""Unit tests for the timing and growth-rate helpers."""
import numpy as np
import pytest

from attention_course.measure import loglog_slope, time_call, time_calls


def test_loglog_slope_recovers_the_exponent():
    n = np.array([16, 32, 64, 128])
    assert loglog_slope(n, 3.0 * n**2) == pytest.approx(2.0)
    assert loglog_slope(n, 5.0 / np.sqrt(n)) == pytest.approx(-0.5)


def test_loglog_slope_rejects_bad_input():
    with pytest.raises(ValueError):
        loglog_slope([1, 2], [1, 0])
    with pytest.raises(ValueError):
        loglog_slope([1], [1])


def test_time_call_runs_warmup_plus_repeats_and_returns_the_minimum():
    calls = []
    seconds = time_call(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6
    assert 0 <= seconds < 0.1
    with pytest.raises(ValueError):
        time_call(lambda: None, repeats=0)


def test_time_call_keeps_running_until_min_time_but_stops_at_max_repeats():
    calls = []
    time_call(lambda: calls.append(1), repeats=2, warmup=0, min_time=10.0, max_repeats=50)
    assert len(calls) == 50



def test_time_calls_alternates_and_returns_one_minimum_per_function():
    order = []
    seconds = time_calls([lambda: order.append("a"), lambda: order.append("b")],
                         repeats=3, warmup=1)
    assert order == ["a", "b"] + ["a", "b"] * 3
    assert len(seconds) == 2 and all(0 <= s < 0.1 for s in seconds)
    with pytest.raises(ValueError):
        time_calls([lambda: None], repeats=0)


def test_time_calls_keeps_running_until_min_time_but_stops_at_max_repeats():
    calls = []
    time_calls([lambda: calls.append(1)] * 2, repeats=2, warmup=0, min_time=10.0,
               max_repeats=20)
    assert len(calls) == 40
