"""The org file of `customer-updates orgs load` (DESIGN §3), YAML or JSON, validated in full before anything loads.

Types, ranges and formats are the models' field rules; rules inside one small model (a credential's secret,
an enum's values, slab thresholds) are its model validators; rules between entries (unique keys, a
credential's till) are in `orgfile_relations`. `parse_org_file` reports them all, one line per problem with its
path, e.g. `orgs[0].credentials[1].password: required (or password_md5)`.
"""

from __future__ import annotations

from datetime import date, datetime
from itertools import pairwise
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from customer_updates.models.orgfile_relations import Path, dotted, duplicates, relation_problems
from customer_updates.rules.fields import compile_field_regex
from customer_updates.rules.parse import DATETIME_FORMAT, FIELD_VALUE_MAX

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _raise_problems(problems: list[tuple[Path, str]]) -> None:
    """Several problems of one model at once, each with its path below the model (see `org_file_problems`)."""
    if problems:
        text = "; ".join(f"{dotted(p)}: {m}" for p, m in problems)
        raise PydanticCustomError("org_file_rules", "{text}", {"text": text, "problems": problems})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrgConfigs(_Strict):
    """The org's `CONF_*` settings (SPEC), each of its own type: a wrong one would fail every update of the org."""

    CONF_REGISTRATION_PRIMARY_KEY: Literal["MOBILE", "EMAIL", "EXTERNAL_ID"] | None = None
    CONF_ALLOW_MOBILE_UPDATE: bool | None = None
    CONF_ALLOW_EMAIL_UPDATE: bool | None = None
    CONF_LOYALTY_ALLOW_EXTERNAL_ID_UPDATE: bool | None = None
    CONF_AUTO_MERGE_LOYALTY_CUSTOMERS: bool | None = None
    CONF_CUSTOMER_MERGE_OVERWRITE_EXTENDED_FIELD_VALUE: bool | None = None
    CONF_MIN_REGISTRATION_DATE: str | None = None
    # The external_id column holds 100 characters.
    CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH: int | None = Field(None, ge=1, le=100)
    CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH: int | None = Field(None, ge=1, le=100)

    @field_validator("CONF_REGISTRATION_PRIMARY_KEY", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("CONF_MIN_REGISTRATION_DATE", mode="before")
    @classmethod
    def _datetime_text(cls, value: Any) -> Any:
        # YAML reads an unquoted `1995-01-01 00:00:00` as a datetime; the rules read the text form.
        if isinstance(value, datetime):
            return value.strftime(DATETIME_FORMAT)
        if isinstance(value, date):
            return f"{value.isoformat()} 00:00:00"
        if isinstance(value, str):
            try:
                return datetime.strptime(value.strip(), DATETIME_FORMAT).strftime(DATETIME_FORMAT)
            except ValueError:
                raise PydanticCustomError("datetime_format", "must be YYYY-MM-DD HH:MM:SS") from None
        return value

    @model_validator(mode="after")
    def _lengths_in_order(self) -> Self:
        low = self.CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH or 1
        high = self.CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH or 100
        if low > high:
            _raise_problems([(("CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH",),
                              f"{low} is above CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH ({high})")])
        return self

    def stored(self) -> dict[str, Any]:
        """The settings as the org row keeps them: only those the file sets."""
        return self.model_dump(exclude_none=True)


class CustomFieldSpec(_Strict):
    name: str = Field(min_length=1, max_length=100)
    regex: str | None = None
    multi_select: bool = False

    @field_validator("regex")
    @classmethod
    def _linear_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_field_regex(value)
            except ValueError as exc:
                raise PydanticCustomError("regex", "{reason}", {"reason": str(exc)}) from None
        return value


class ExtendedFieldSpec(_Strict):
    name: str = Field(min_length=1, max_length=100)
    type: Literal["string", "integer", "double", "date", "enum"]
    values: list[str] | None = None

    @model_validator(mode="after")
    def _values_for_enums_only(self) -> Self:
        problems: list[tuple[Path, str]] = []
        if self.type != "enum":
            if self.values is not None:
                problems.append((("values",), "only an enum has values"))
        elif not self.values:
            problems.append((("values",), "required for an enum (one value at least)"))
        else:
            for i, value in enumerate(self.values):
                if not value.strip() or len(value) > FIELD_VALUE_MAX:
                    problems.append((("values", i), f"must be 1 to {FIELD_VALUE_MAX} characters, not blank"))
            # Enum values match case-insensitively, so two that differ only in case are one.
            problems += duplicates(((("values", i), v.lower()) for i, v in enumerate(self.values)), "value")
        _raise_problems(problems)
        return self


class TillSpec(_Strict):
    code: str = Field(min_length=1, max_length=100)
    store: str | None = Field(None, max_length=200)


class SlabSpec(_Strict):
    number: int = Field(ge=1, le=INT32_MAX)
    name: str = Field(min_length=1, max_length=100)
    threshold: int = Field(0, ge=0, le=INT64_MAX)
    validity_months: int | None = Field(None, ge=1, le=1200)
    description: str | None = Field(None, max_length=200)


class ProgramSpec(_Strict):
    id: int = Field(gt=0, le=INT32_MAX)
    slabs: list[SlabSpec] = []

    @model_validator(mode="after")
    def _slabs_in_order(self) -> Self:
        problems = duplicates(((("slabs", i, "number"), s.number) for i, s in enumerate(self.slabs)), "number")
        ordered = sorted(enumerate(self.slabs), key=lambda pair: pair[1].number)
        if ordered and ordered[0][1].threshold != 0:
            # SPEC: a LOYALTY customer is always in a slab, the lowest from the start.
            problems.append((("slabs", ordered[0][0], "threshold"), "the lowest slab's threshold must be 0"))
        for (_, lower), (i, higher) in pairwise(ordered):
            if higher.number != lower.number and higher.threshold <= lower.threshold:
                problems.append((("slabs", i, "threshold"),
                                 f"must be above slab {lower.number}'s threshold ({lower.threshold})"))
        _raise_problems(problems)
        return self


class PointsRule(_Strict):
    points: int = Field(ge=0, le=INT32_MAX)


class ProfileCompletionRule(PointsRule):
    fields: list[str] = Field(min_length=1)


class SideEffectsSpec(_Strict):
    profile_completion: ProfileCompletionRule | None = None
    first_fill: dict[str, int] = {}
    loyalty_conversion: PointsRule | None = None

    @field_validator("first_fill")
    @classmethod
    def _points_in_range(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [name for name, points in value.items() if not 0 <= points <= INT32_MAX]
        if bad:
            _raise_problems([((name,), f"points must be 0 to {INT32_MAX}") for name in bad])
        return value


class CredentialSpec(_Strict):
    """A till's HTTP credentials. Give `password` (hashed on load) or `password_md5` (what clients send)."""

    username: str = Field(min_length=1, max_length=100)
    password: str | None = Field(None, min_length=1, max_length=200)
    password_md5: str | None = None
    till: str | None = None
    write_customers: bool = True

    @field_validator("password_md5")
    @classmethod
    def _md5_hex(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 32 or any(c not in "0123456789abcdefABCDEF" for c in value)):
            raise PydanticCustomError("md5", "must be 32 hexadecimal digits (the MD5 of the password)")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        # Without one, the credential would log in with the MD5 of an empty password.
        if self.password is None and self.password_md5 is None:
            _raise_problems([(("password",), "required (or password_md5)")])
        if self.password is not None and self.password_md5 is not None:
            _raise_problems([(("password_md5",), "give password or password_md5, not both")])
        return self


class OrgSpec(_Strict):
    id: int = Field(gt=0, le=INT32_MAX)
    name: str = Field(min_length=1, max_length=200)
    configs: OrgConfigs = OrgConfigs()
    custom_fields: list[CustomFieldSpec] = []
    extended_fields: list[ExtendedFieldSpec] = []
    tills: list[TillSpec] = []
    program: ProgramSpec | None = None
    side_effects: SideEffectsSpec = SideEffectsSpec()
    credentials: list[CredentialSpec] = []


class OrgFile(_Strict):
    orgs: list[OrgSpec]


_MESSAGES = {"missing": "required", "extra_forbidden": "unknown key"}


def org_file_problems(exc: ValidationError, prefix: Path = ()) -> list[str]:
    """One line per problem, each with its path: `orgs[0].credentials[1].password: required`."""
    lines: list[str] = []
    for error in exc.errors():
        loc = (*prefix, *error["loc"])
        ctx = error.get("ctx") or {}
        if error["type"] == "org_file_rules":
            lines += [f"{dotted((*loc, *path))}: {text}" for path, text in ctx["problems"]]
            continue
        text = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        lines.append(f"{dotted(loc) or '(file)'}: {text}")
    return lines


class OrgFileError(ValueError):
    """The org file cannot be loaded; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def parse_org_file(data: Any) -> OrgFile:
    """The validated file, or OrgFileError listing every problem. A bare list is taken as the list of orgs."""
    if isinstance(data, list):
        data = {"orgs": data}
    problems: list[str] = []
    parsed: OrgFile | None = None
    try:
        parsed = OrgFile.model_validate(data)
    except ValidationError as exc:
        problems += org_file_problems(exc)
    problems += [f"{dotted(path)}: {text}" for path, text in relation_problems(data)]
    if problems or parsed is None:
        raise OrgFileError(problems)
    return parsed
