"""The bench pauses its own garbage collector while it measures, and always gives it back."""

from __future__ import annotations

import gc

import pytest

from bench.measure import collector_paused


def test_the_collector_is_off_and_the_heap_frozen_while_a_phase_is_measured():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_collector_comes_back_when_a_phase_fails():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the worker did not start")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
