"""Rules between the entries of an org file: unique keys, a credential's till, the fields side effects name.

They read the file as parsed (plain dicts and lists), not the validated models, so they are reported together
with every type error of the same file instead of after those are fixed. An entry of the wrong shape is
skipped here: the models report it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from customer_updates.rules.state import SCALAR_FIELDS

Path = tuple[str | int, ...]


def dotted(path: Path) -> str:
    """`orgs[0].credentials[1].password`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _entries(container: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    value = container.get(key) if isinstance(container, dict) else None
    return [(i, x) for i, x in enumerate(value) if isinstance(x, dict)] if isinstance(value, list) else []


def _key(value: Any) -> Any:
    """A comparable form of an id or name: `1` and `"1"` validate to the same org id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value) if value.strip().isdigit() else value
    return None


def duplicates(paths_and_keys: Iterable[tuple[Path, Any]], what: str) -> list[tuple[Path, str]]:
    first: dict[Any, Path] = {}
    problems: list[tuple[Path, str]] = []
    for path, key in paths_and_keys:
        if key is None:
            continue
        if key in first:
            problems.append((path, f"duplicate {what} {key!r}, also at {dotted(first[key])}"))
        else:
            first[key] = path
    return problems


def relation_problems(data: Any) -> list[tuple[Path, str]]:
    """Problems between entries of the whole file (`{"orgs": [...]}`), each with its path."""
    orgs = _entries(data, "orgs")
    # Org ids, program ids and usernames are keys of the whole database, not of one org.
    problems = duplicates(((("orgs", i, "id"), _key(o.get("id"))) for i, o in orgs), "org id")
    problems += duplicates(((("orgs", i, "program", "id"), _key(o["program"].get("id")))
                            for i, o in orgs if isinstance(o.get("program"), dict)), "program id")
    problems += duplicates(((("orgs", i, "credentials", j, "username"), _key(c.get("username")))
                            for i, o in orgs for j, c in _entries(o, "credentials")), "username")
    for i, org in orgs:
        problems += _org_problems(org, ("orgs", i))
    return problems


def _org_problems(org: dict[str, Any], at: Path) -> list[tuple[Path, str]]:
    custom = _entries(org, "custom_fields")
    extended = _entries(org, "extended_fields")
    tills = _entries(org, "tills")
    problems = duplicates((((*at, "custom_fields", i, "name"), _key(f.get("name"))) for i, f in custom), "custom field")
    problems += duplicates((((*at, "extended_fields", i, "name"), _key(f.get("name"))) for i, f in extended),
                           "extended field")
    problems += duplicates((((*at, "tills", i, "code"), _key(x.get("code"))) for i, x in tills), "till code")
    codes = {x.get("code") for _, x in tills}
    for j, credential in _entries(org, "credentials"):
        till = credential.get("till")
        if isinstance(till, str) and till not in codes:
            problems.append(((*at, "credentials", j, "till"), f"{till!r} is not a till of this org"))
    known = {*SCALAR_FIELDS, *(f"custom:{f.get('name')}" for _, f in custom),
             *(f"extended:{f.get('name')}" for _, f in extended)}
    rules = org.get("side_effects")
    named: list[tuple[Path, Any]] = []
    if isinstance(rules, dict):
        if isinstance(rules.get("first_fill"), dict):
            named += [((*at, "side_effects", "first_fill", str(n)), n) for n in rules["first_fill"]]
        completion = rules.get("profile_completion")
        if isinstance(completion, dict) and isinstance(completion.get("fields"), list):
            named += [((*at, "side_effects", "profile_completion", "fields", k), n)
                      for k, n in enumerate(completion["fields"])]
    problems += [(path, f"{name!r} is not a field of this org (a profile field, custom:NAME or extended:NAME)")
                 for path, name in named if isinstance(name, str) and name not in known]
    return problems
