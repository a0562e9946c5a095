"""The allocator setting that lets a login's scrypt memory leave the server."""

from __future__ import annotations

import platform
import sys

import pytest

from customer_updates.ops.memory import return_large_blocks


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt's threshold is glibc's")
def test_glibc_accepts_a_fixed_threshold_for_blocks_mapped_on_their_own():
    assert return_large_blocks() is True


def test_elsewhere_nothing_is_set_and_nothing_fails(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert return_large_blocks() is False
