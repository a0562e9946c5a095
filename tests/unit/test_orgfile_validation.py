"""The org file is validated in full: every problem is listed with its path, and a bad file yields no OrgFile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from customer_updates.models.orgfile import OrgFileError, parse_org_file
from customer_updates.rules.fields import custom_field_value
from customer_updates.rules.state import OrgConfig
from customer_updates.store.orgs import read_org_file
from tests.conftest import EXAMPLES


def _org(**extra: Any) -> dict[str, Any]:
    return {"id": 1, "name": "One", **extra}


def _problems(data: Any) -> list[str]:
    with pytest.raises(OrgFileError) as raised:
        parse_org_file(data)
    return raised.value.problems


def test_the_example_org_file_is_valid():
    assert [o.id for o in read_org_file(EXAMPLES / "org.yaml").orgs] == [1, 2]


def test_a_credential_without_a_password_is_refused_at_its_path():
    problems = _problems({"orgs": [_org(credentials=[{"username": "a", "password": "x"}, {"username": "b"}])]})
    assert problems == ["orgs[0].credentials[1].password: required (or password_md5)"]


@pytest.mark.parametrize("md5", ["", "abc", "z" * 32, "0" * 31, "0" * 33])
def test_a_password_md5_that_is_not_32_hex_digits_is_refused(md5):
    problems = _problems([_org(credentials=[{"username": "a", "password_md5": md5}])])
    assert problems == ["orgs[0].credentials[0].password_md5: must be 32 hexadecimal digits (the MD5 of the password)"]


def test_a_credential_with_both_secrets_is_refused():
    problems = _problems([_org(credentials=[{"username": "a", "password": "x", "password_md5": "a" * 32}])])
    assert problems == ["orgs[0].credentials[0].password_md5: give password or password_md5, not both"]


@pytest.mark.parametrize(("name", "value"), [
    ("CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH", "three"),
    ("CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH", 500),
    ("CONF_ALLOW_EMAIL_UPDATE", "maybe"),
    ("CONF_ALLOW_MOBILE_UPDATE", [True]),
    ("CONF_REGISTRATION_PRIMARY_KEY", "PHONE"),
    ("CONF_MIN_REGISTRATION_DATE", "last year"),
    ("CONF_AUTO_MERGE_LOYALTY_CUSTOMERS", {"on": True}),
    ("CONF_NO_SUCH_SETTING", True),
])
def test_a_config_value_of_the_wrong_type_or_name_is_refused_by_its_name(name, value):
    problems = _problems([_org(configs={name: value})])
    assert len(problems) == 1
    assert problems[0].startswith(f"orgs[0].configs.{name}: ")


def test_config_values_are_stored_in_the_type_the_rules_read():
    file = parse_org_file([_org(configs={"CONF_ALLOW_EMAIL_UPDATE": "yes", "CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH": "3",
                                         "CONF_REGISTRATION_PRIMARY_KEY": "email"})])
    loaded = yaml.safe_load("CONF_MIN_REGISTRATION_DATE: 2001-02-03 04:05:06")
    dated = parse_org_file([_org(configs=loaded)])
    assert file.orgs[0].configs.stored() == {"CONF_ALLOW_EMAIL_UPDATE": True, "CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH": 3,
                                             "CONF_REGISTRATION_PRIMARY_KEY": "EMAIL"}
    assert dated.orgs[0].configs.stored() == {"CONF_MIN_REGISTRATION_DATE": "2001-02-03 04:05:06"}


def test_external_id_lengths_out_of_order_are_refused():
    problems = _problems([_org(configs={"CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH": 50,
                                        "CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH": 10})])
    assert problems == ["orgs[0].configs.CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH: "
                        "50 is above CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH (10)"]


def test_duplicate_org_ids_are_refused_instead_of_the_last_winning():
    problems = _problems([_org(), _org(name="Two"), {"id": "1", "name": "Three"}])
    assert problems == ["orgs[1].id: duplicate org id 1, also at orgs[0].id",
                        "orgs[2].id: duplicate org id 1, also at orgs[0].id"]


def test_keys_of_the_whole_database_are_unique_across_orgs():
    problems = _problems([
        _org(program={"id": 9}, credentials=[{"username": "till", "password": "x"}]),
        {"id": 2, "name": "Two", "program": {"id": 9}, "credentials": [{"username": "till", "password": "y"}]},
    ])
    assert problems == ["orgs[1].program.id: duplicate program id 9, also at orgs[0].program.id",
                        "orgs[1].credentials[0].username: duplicate username 'till', also at "
                        "orgs[0].credentials[0].username"]


def test_names_unique_within_an_org_are_refused_when_repeated():
    problems = _problems([_org(custom_fields=[{"name": "a"}, {"name": "a"}],
                               extended_fields=[{"name": "e", "type": "string"}, {"name": "e", "type": "date"}],
                               tills=[{"code": "t"}, {"code": "t"}])])
    assert problems == ["orgs[0].custom_fields[1].name: duplicate custom field 'a', also at "
                        "orgs[0].custom_fields[0].name",
                        "orgs[0].extended_fields[1].name: duplicate extended field 'e', also at "
                        "orgs[0].extended_fields[0].name",
                        "orgs[0].tills[1].code: duplicate till code 't', also at orgs[0].tills[0].code"]


def test_references_inside_an_org_must_name_what_the_org_defines():
    problems = _problems([_org(tills=[{"code": "t"}], credentials=[{"username": "u", "password": "x", "till": "x"}],
                               side_effects={"first_fill": {"emial": 5},
                                             "profile_completion": {"points": 1, "fields": ["extended:dob"]}})])
    assert problems == [
        "orgs[0].credentials[0].till: 'x' is not a till of this org",
        "orgs[0].side_effects.first_fill.emial: 'emial' is not a field of this org "
        "(a profile field, custom:NAME or extended:NAME)",
        "orgs[0].side_effects.profile_completion.fields[0]: 'extended:dob' is not a field of this org "
        "(a profile field, custom:NAME or extended:NAME)",
    ]


def test_enum_values_and_slab_thresholds_are_checked():
    problems = _problems([_org(extended_fields=[{"name": "g", "type": "enum"},
                                                {"name": "h", "type": "enum", "values": ["A", "a"]},
                                                {"name": "i", "type": "date", "values": ["x"]}],
                               program={"id": 3, "slabs": [{"number": 2, "name": "S", "threshold": 10},
                                                           {"number": 1, "name": "B", "threshold": 10},
                                                           {"number": 2, "name": "G", "threshold": 900}]})])
    assert sorted(problems) == sorted([
        "orgs[0].extended_fields[0].values: required for an enum (one value at least)",
        "orgs[0].extended_fields[1].values[1]: duplicate value 'a', also at values[0]",
        "orgs[0].extended_fields[2].values: only an enum has values",
        "orgs[0].program.slabs[2].number: duplicate number 2, also at slabs[0].number",
        "orgs[0].program.slabs[1].threshold: the lowest slab's threshold must be 0",
        "orgs[0].program.slabs[0].threshold: must be above slab 1's threshold (10)",
    ])


def test_every_problem_of_a_file_is_listed_at_once():
    problems = _problems([
        _org(configs={"CONF_ALLOW_EMAIL_UPDATE": "maybe"}, credentials=[{"username": "u"}]),
        _org(name="Again", custom_fields=[{"name": "p", "regex": "(a)\\1"}]),
        {"id": -4, "name": "", "colour": "red"},
    ])
    assert [p.split(":")[0] for p in problems] == [
        "orgs[0].configs.CONF_ALLOW_EMAIL_UPDATE", "orgs[0].credentials[0].password",
        "orgs[1].custom_fields[0].regex", "orgs[2].id", "orgs[2].name", "orgs[2].colour", "orgs[1].id"]


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)a", "(?<!x)y", "[", "a{2000}{2000}", "x" * 501])
def test_a_regex_the_linear_time_engine_cannot_run_is_refused(pattern):
    problems = _problems([_org(custom_fields=[{"name": "p", "regex": pattern}])])
    assert len(problems) == 1 and problems[0].startswith("orgs[0].custom_fields[0].regex: ")


def test_a_catastrophic_backtracking_pattern_matches_in_linear_time():
    file = parse_org_file([_org(custom_fields=[{"name": "p", "regex": "^(a+)+$"}, {"name": "q", "regex": "(x+x+)+y"}])])
    org = OrgConfig(id=1, custom_fields={f.name: f.regex for f in file.orgs[0].custom_fields})
    started = time.perf_counter()
    assert custom_field_value(org, "p", "a" * 249 + "!") is None
    assert custom_field_value(org, "q", "x" * 250) is None
    assert custom_field_value(org, "p", "a" * 250) == "a" * 250
    # Python's re takes longer than the age of the universe on these; RE2 takes microseconds.
    assert time.perf_counter() - started < 0.5


def test_a_file_that_is_not_yaml_or_utf8_is_refused_with_the_reason(tmp_path: Path):
    broken = tmp_path / "org.yaml"
    broken.write_text("orgs: [\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"orgs:\n  - {id: 1, name: caf\xe9}\n")
    for path, reason in ((broken, "(file): not YAML"), (latin, "(file): not UTF-8 at byte 27")):
        with pytest.raises(OrgFileError) as raised:
            read_org_file(path)
        assert raised.value.problems[0].startswith(reason)
