"""`orgs load`, `customers import`, `customer get` and `merges list` from the command line."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from customer_updates.models import tables as t
from customer_updates.store.db import session_scope
from tests.conftest import EXAMPLES, run_cli


def _counts(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (t.Org, t.CustomFieldDef, t.ExtendedFieldDef, t.Till, t.Slab, t.Credential, t.Customer)}


def test_loading_the_same_org_file_twice_changes_nothing(db_url, redis_url):
    first = run_cli(["orgs", "load", str(EXAMPLES / "org.yaml")], db_url, redis_url)
    assert first.returncode == 0, first.stderr
    with session_scope(db_url) as session:
        version = session.scalar(select(t.Org.version).where(t.Org.id == 1))
    counts = _counts(db_url)

    second = run_cli(["orgs", "load", str(EXAMPLES / "org.yaml")], db_url, redis_url)

    assert "unchanged" in second.stderr and "loaded" not in second.stderr
    assert _counts(db_url) == counts
    with session_scope(db_url) as session:
        assert session.scalar(select(t.Org.version).where(t.Org.id == 1)) == version


def test_an_invalid_org_file_is_refused_with_the_reason(db_url, redis_url, tmp_path):
    bad = tmp_path / "org.yaml"
    bad.write_text("orgs:\n  - id: 1\n    name: X\n    extended_fields:\n      - {name: a, type: colour}\n")
    done = run_cli(["orgs", "load", str(bad)], db_url, redis_url)
    assert done.returncode == 2
    assert "type" in done.stderr


def test_an_org_file_with_problems_lists_each_with_its_path_and_loads_nothing(db_url, redis_url, tmp_path):
    bad = tmp_path / "org.yaml"
    bad.write_text(
        "orgs:\n"
        "  - {id: 5, name: Good}\n"
        "  - id: 6\n"
        "    name: Bad\n"
        "    configs: {CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH: three}\n"
        "    custom_fields: [{name: code, regex: '^(a)\\1$'}]\n"
        "    credentials: [{username: till.6}, {username: till.7, password_md5: not-an-md5}]\n"
        "  - {id: 5, name: Again}\n")
    done = run_cli(["orgs", "load", str(bad)], db_url, redis_url)
    assert done.returncode == 2
    for line in ("orgs[1].configs.CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH: Input should be a valid integer",
                 "orgs[1].custom_fields[0].regex: refused by RE2",
                 "orgs[1].credentials[0].password: required (or password_md5)",
                 "orgs[1].credentials[1].password_md5: must be 32 hexadecimal digits",
                 "orgs[2].id: duplicate org id 5, also at orgs[0].id",
                 "5 problems in org.yaml, nothing loaded"):
        assert line in done.stderr
    assert "Traceback" not in done.stderr
    assert _counts(db_url)["orgs"] == 0


def test_a_username_another_org_holds_is_refused_and_nothing_loads(db_url, redis_url, tmp_path):
    assert run_cli(["orgs", "load", str(EXAMPLES / "org.yaml")], db_url, redis_url).returncode == 0
    other = tmp_path / "other.yaml"
    other.write_text("orgs:\n  - {id: 9, name: Nine, credentials: [{username: till.mg.road, password: x}]}\n")
    done = run_cli(["orgs", "load", str(other)], db_url, redis_url)
    assert done.returncode == 2
    assert "username 'till.mg.road': already a credential of org 1" in done.stderr
    with session_scope(db_url) as session:
        assert session.get(t.Org, 9) is None


def test_an_import_reports_bad_lines_by_number_and_loads_the_good_ones_once(db_url, redis_url):
    run_cli(["orgs", "load", str(EXAMPLES / "org.yaml")], db_url, redis_url)
    first = run_cli(["customers", "import", str(EXAMPLES / "customers.ndjson")], db_url, redis_url)
    assert first.returncode == 0, first.stderr
    assert "line 7: not JSON" in first.stderr
    assert "line 8: no identifier" in first.stderr
    assert "loaded 6" in first.stderr

    again = run_cli(["customers", "import", str(EXAMPLES / "customers.ndjson")], db_url, redis_url)
    assert "loaded 0, already present 6" in again.stderr
    assert _counts(db_url)["customers"] == 6


def test_an_import_refuses_an_identifier_held_by_another_customer(db_url, redis_url, tmp_path):
    run_cli(["orgs", "load", str(EXAMPLES / "org.yaml")], db_url, redis_url)
    lines = tmp_path / "c.ndjson"
    lines.write_text("\n".join(json.dumps(x) for x in [
        {"org_id": 1, "mobile": "919811111111", "email": "x@example.com"},
        {"org_id": 1, "mobile": "919822222222", "email": "x@example.com"},
        {"org_id": 1, "mobile": "919833333333", "email": "not an email"},
        {"org_id": 77, "mobile": "919844444444"},
    ]))
    done = run_cli(["customers", "import", str(lines)], db_url, redis_url)
    assert "line 2: an identifier already belongs to another customer" in done.stderr
    assert "line 3: email is malformed" in done.stderr
    assert "line 4: org_id 77 is not a known org" in done.stderr
    assert "loaded 1" in done.stderr


def test_customer_get_and_merges_list_show_a_merge(loaded_db, redis_url, broker_url, start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    merge = run_cli(["enqueue", str(EXAMPLES / "updates.json"), "--org", "1", "--wait", "60", "--json"],
                    loaded_db, redis_url, broker_url=broker_url)
    assert merge.returncode == 0, merge.stderr
    with session_scope(loaded_db) as session:
        dana = session.scalars(select(t.Customer).where(t.Customer.email == "dana@example.com",
                                                         t.Customer.active.is_(False))).one()
        ben_id = dana.merged_into

    got = run_cli(["customer", "get", "--org", "1", "--id", str(dana.user_id), "--json"], loaded_db, redis_url)
    item = json.loads(got.stdout)
    assert item["user_id"] == ben_id
    assert item["item_status"]["warnings"]["warning"] == ["91009"]

    listed = run_cli(["merges", "list", "--org", "1", "--customer", str(ben_id), "--json"], loaded_db, redis_url)
    merges = json.loads(listed.stdout)
    assert [(m["survivor_id"], m["victim_id"], m["identifier"]) for m in merges] == [(ben_id, dana.user_id, "email")]
    assert merges[0]["snapshot"]["email"] == "dana@example.com"
    with session_scope(loaded_db) as session:
        audit = session.scalars(select(t.AuditEntry).where(t.AuditEntry.kind == "CustomerMerge")
                                .order_by(t.AuditEntry.user_id)).all()
    # On both customers, so that each one's history shows it (SPEC §8).
    assert [(a.user_id, a.previous, a.new) for a in audit] == [
        (uid, str(dana.user_id), str(ben_id)) for uid in sorted((int(ben_id or 0), int(dana.user_id)))]


def test_customer_get_of_an_unknown_customer_says_1012(loaded_db, redis_url):
    got = run_cli(["customer", "get", "--org", "1", "--mobile", "919899999999", "--json"], loaded_db, redis_url)
    assert got.returncode == 1
    assert json.loads(got.stdout)["item_status"]["code"] == "1012"
