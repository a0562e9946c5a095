"""The org file of `customer-updates orgs load` (DESIGN §3), YAML or JSON."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomFieldSpec(_Strict):
    name: str = Field(min_length=1, max_length=100)
    regex: str | None = None
    multi_select: bool = False


class ExtendedFieldSpec(_Strict):
    name: str = Field(min_length=1, max_length=100)
    type: Literal["string", "integer", "double", "date", "enum"]
    values: list[str] | None = None


class TillSpec(_Strict):
    code: str = Field(min_length=1, max_length=100)
    store: str | None = None


class SlabSpec(_Strict):
    number: int = Field(ge=1)
    name: str
    threshold: int = Field(0, ge=0)
    validity_months: int | None = Field(None, ge=1)
    description: str | None = None


class ProgramSpec(_Strict):
    id: int
    slabs: list[SlabSpec] = []


class PointsRule(_Strict):
    points: int = Field(ge=0)


class ProfileCompletionRule(PointsRule):
    fields: list[str]


class SideEffectsSpec(_Strict):
    profile_completion: ProfileCompletionRule | None = None
    first_fill: dict[str, int] = {}
    loyalty_conversion: PointsRule | None = None


class CredentialSpec(_Strict):
    """A till's HTTP credentials. Give `password` (hashed on load) or `password_md5` (what clients send)."""

    username: str
    password: str | None = None
    password_md5: str | None = None
    till: str | None = None
    write_customers: bool = True


class OrgSpec(_Strict):
    id: int = Field(gt=0)
    name: str
    configs: dict[str, Any] = {}
    custom_fields: list[CustomFieldSpec] = []
    extended_fields: list[ExtendedFieldSpec] = []
    tills: list[TillSpec] = []
    program: ProgramSpec | None = None
    side_effects: SideEffectsSpec = SideEffectsSpec()
    credentials: list[CredentialSpec] = []


class OrgFile(_Strict):
    orgs: list[OrgSpec]
