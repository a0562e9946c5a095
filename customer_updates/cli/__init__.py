"""The `customer-updates` command line (DESIGN §3). Each module adds its commands to `main`."""

from __future__ import annotations

from customer_updates.cli import data, merges, ops, results
from customer_updates.cli.common import main

__all__ = ["data", "main", "merges", "ops", "results"]
