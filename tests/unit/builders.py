"""Plain-data builders for rule tests: an org like examples/org.yaml and customers, no infrastructure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from customer_updates.rules.directory import Directory
from customer_updates.rules.parse import parse_item
from customer_updates.rules.state import CustomerState, ExtendedFieldDef, OrgConfig, SideEffectRules, SlabDef
from customer_updates.rules.update import Applied, apply_item

NOW = datetime(2026, 6, 1, 12, 0, 0)
T0 = datetime(2026, 5, 1, 9, 0, 0)


def org(**configs: Any) -> OrgConfig:
    base = {
        "CONF_REGISTRATION_PRIMARY_KEY": "MOBILE",
        "CONF_ALLOW_MOBILE_UPDATE": True,
        "CONF_ALLOW_EMAIL_UPDATE": True,
        "CONF_LOYALTY_ALLOW_EXTERNAL_ID_UPDATE": True,
        "CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH": 3,
        "CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH": 40,
    }
    base.update(configs)
    return OrgConfig(
        id=1,
        configs=base,
        custom_fields={"favourite_drink": None, "postcode": r"^[0-9]{5,6}$", "interests": None},
        extended_fields={
            "gender": ExtendedFieldDef("gender", "enum", ("Male", "Female", "Other")),
            "dob": ExtendedFieldDef("dob", "date"),
            "kids": ExtendedFieldDef("kids", "integer"),
            "height": ExtendedFieldDef("height", "double"),
            "city": ExtendedFieldDef("city", "string"),
        },
        tills=frozenset({"store.mg.road", "store.airport"}),
        program_id=101,
        slabs=(SlabDef(1, "Bronze", 0), SlabDef(2, "Silver", 500, 12), SlabDef(3, "Gold", 2000, 12)),
        side_effects=SideEffectRules(
            profile_completion_points=100,
            profile_completion_fields=("mobile", "email", "firstname", "lastname", "extended:dob"),
            first_fill=(("email", 25),),
            loyalty_conversion_points=50,
        ),
    )


def customer(user_id: int, **values: Any) -> CustomerState:
    state = CustomerState(user_id=user_id, org_id=1)
    for key, value in values.items():
        setattr(state, key, value)
    return state


def apply(raw: dict[str, Any], *customers: CustomerState, config: OrgConfig | None = None,
          issued_at: datetime = T0) -> Applied:
    return apply_item(config or org(), parse_item(raw), Directory(list(customers)), issued_at, NOW)


def codes(applied: Applied) -> set[int]:
    return {int(w.code) for w in applied.warnings}
