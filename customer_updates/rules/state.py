"""Plain data the rules work on: an org's configuration and a customer's state.

These are dataclasses, not ORM objects, so the rules can be tested (and property-tested) without a
database. The store translates rows into these and diffs them back into statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

IDENTIFIERS = ("mobile", "email", "external_id")
PRIMARY_KEY_CONFIG = {"MOBILE": "mobile", "EMAIL": "email", "EXTERNAL_ID": "external_id"}
# Scalar profile fields that carry an issued_at stamp (SPEC §3.5).
SCALAR_FIELDS = (
    "mobile", "email", "external_id", "firstname", "lastname", "registered_on",
    "registered_till", "associated_with", "type", "fraud_status",
)


@dataclass(frozen=True)
class ExtendedFieldDef:
    name: str
    type: str  # string | integer | double | date | enum
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlabDef:
    number: int
    name: str
    threshold: int
    validity_months: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class SideEffectRules:
    profile_completion_points: int = 0
    profile_completion_fields: tuple[str, ...] = ()
    first_fill: tuple[tuple[str, int], ...] = ()
    loyalty_conversion_points: int = 0


@dataclass(frozen=True)
class OrgConfig:
    """Everything of one org that the rules read. Cached per worker process."""

    id: int
    configs: dict[str, Any] = field(default_factory=dict)
    custom_fields: dict[str, str | None] = field(default_factory=dict)  # name -> regex
    extended_fields: dict[str, ExtendedFieldDef] = field(default_factory=dict)
    tills: frozenset[str] = frozenset()
    program_id: int | None = None
    slabs: tuple[SlabDef, ...] = ()
    side_effects: SideEffectRules = SideEffectRules()
    version: int = 1

    def config(self, name: str, default: Any = None) -> Any:
        return self.configs.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.configs.get(name, default)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)

    @property
    def primary_identifier(self) -> str:
        return PRIMARY_KEY_CONFIG.get(str(self.config("CONF_REGISTRATION_PRIMARY_KEY", "MOBILE")).upper(), "mobile")

    def slab(self, number: int | None) -> SlabDef | None:
        return next((s for s in self.slabs if s.number == number), None)


@dataclass(frozen=True, slots=True)
class FieldValue:
    value: str | None
    issued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    status: int
    scope: str = "ALL"
    issued_at: datetime | None = None


@dataclass
class CustomerState:
    user_id: int
    org_id: int
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    registered_on: datetime | None = None
    registered_till: str | None = None
    associated_with: str | None = None
    type: str = "LOYALTY"
    fraud_status: str = "NONE"
    loyalty_points: int = 0
    lifetime_points: int = 0
    lifetime_purchases: Decimal = Decimal(0)
    slab_number: int | None = None
    tier_expiry_date: datetime | None = None
    points_summaries: list[dict[str, Any]] = field(default_factory=list)
    stamps: dict[str, datetime] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)
    custom: dict[str, FieldValue] = field(default_factory=dict)
    extended: dict[str, FieldValue] = field(default_factory=dict)
    subscriptions: dict[tuple[str, str], SubscriptionState] = field(default_factory=dict)
    active: bool = True
    merged_into: int | None = None
    updated_on: datetime | None = None

    def copy(self) -> CustomerState:
        # Field by field instead of deepcopy (slow: it runs per customer and item): every container
        # is new, so no change to the copy reaches the original; the entries are frozen and shared.
        clone = object.__new__(CustomerState)
        clone.__dict__.update(self.__dict__)
        clone.points_summaries = [dict(s) for s in self.points_summaries]
        clone.stamps = dict(self.stamps)
        clone.fired = set(self.fired)
        clone.custom = dict(self.custom)
        clone.extended = dict(self.extended)
        clone.subscriptions = dict(self.subscriptions)
        return clone

    def identifier(self, name: str) -> str | None:
        value: str | None = getattr(self, name)
        return value

    def value_of(self, field_name: str) -> Any:
        """A field by the names used in side-effect rules: `firstname`, `custom:NAME`, `extended:NAME`."""
        if field_name.startswith("custom:"):
            fv = self.custom.get(field_name[7:])
            return fv.value if fv else None
        if field_name.startswith("extended:"):
            fv = self.extended.get(field_name[9:])
            return fv.value if fv else None
        return getattr(self, field_name, None)
