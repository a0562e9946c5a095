"""Times in results: the fast text is the one strftime gives, for every datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from customer_updates.models.results import _FMT, _dt


@given(st.datetimes(timezones=st.none() | st.just(UTC) | st.builds(
    timezone, st.integers(-12 * 60, 14 * 60).map(lambda minutes: timedelta(minutes=minutes)))))
def test_a_datetime_reads_in_results_as_strftime_writes_it(value):
    assert _dt(value) == value.strftime(_FMT)


def test_years_before_1000_keep_strftime_s_text_and_no_time_gives_an_empty_string():
    assert _dt(datetime(999, 1, 2, 3, 4, 5)) == datetime(999, 1, 2, 3, 4, 5).strftime(_FMT)
    assert _dt(None) == ""  # the original never sends null (SPEC §6)
