"""The shared assertions refuse what numpy's own comparisons let through."""

import numpy as np
import pytest

from checks import assert_same_recorded


def test_two_runs_that_recorded_no_score_are_not_the_same():
    nothing = np.full(6, np.nan, "float32")  # DoCL's scores before any example was scored
    np.testing.assert_allclose(nothing, nothing.copy())  # numpy: NaN equals NaN
    with pytest.raises(AssertionError, match="recorded 0 of 6 entries"):
        assert_same_recorded(nothing, nothing.copy())


def test_never_visited_markers_are_not_records():
    never = np.full(4, -1, "int32")  # DoCL's last visit step before any visit
    with pytest.raises(AssertionError, match="recorded 0 of 4 entries"):
        assert_same_recorded(never, never.copy(), missing=-1)
    assert_same_recorded([3, 5, -1, 7], [3, 5, -1, 7], missing=-1, min_recorded=3)


def test_partly_recorded_runs_need_enough_entries_in_the_same_places():
    a = np.array([1.0, np.nan, 2.0, np.inf])
    assert_same_recorded(a, a.copy(), min_recorded=2)
    with pytest.raises(AssertionError, match="recorded 2 of 4"):
        assert_same_recorded(a, a.copy(), min_recorded=3)
    with pytest.raises(AssertionError, match="different places"):
        assert_same_recorded(a, np.array([1.0, 2.0, np.nan, np.inf]), min_recorded=2)


def test_recorded_values_are_compared_exactly_or_within_tolerance():
    assert_same_recorded([1.0, 2.0], [1.0, 2.0 + 1e-9], rtol=1e-6)
    with pytest.raises(AssertionError):
        assert_same_recorded([1.0, 2.0], [1.0, 2.0 + 1e-9])
    with pytest.raises(AssertionError, match="shapes"):
        assert_same_recorded([1.0, 2.0], [1.0, 2.0, 3.0])
