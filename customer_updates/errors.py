"""Exceptions raised to callers of the library and the CLI.

    CustomerUpdatesError
    ├── InvalidBody        the body or envelope given to the producer is not of the contract
    ├── UnknownOrg         a command names an org that is not loaded
    └── NotFound           a customer, result or batch does not exist (yet)

Rule failures are not exceptions for callers: they are stored results with a SPEC code.
"""

from __future__ import annotations


class CustomerUpdatesError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidBody(CustomerUpdatesError, ValueError):
    pass


class UnknownOrg(CustomerUpdatesError):
    pass


class NotFound(CustomerUpdatesError):
    pass
