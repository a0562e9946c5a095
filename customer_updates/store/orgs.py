"""Orgs: loading the org file (idempotently) and reading an org's configuration (cached per process)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.models.orgfile import CredentialSpec, OrgFile, OrgFileError, OrgSpec, parse_org_file
from customer_updates.rules.state import ExtendedFieldDef, OrgConfig, SideEffectRules, SlabDef


def read_org_file(path: Path) -> OrgFile:
    """The validated org file; OrgFileError lists every problem (nothing is loaded from a file that has one)."""
    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise OrgFileError([f"(file): not UTF-8 at byte {exc.start}"]) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise OrgFileError([f"(file): not {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"]) from None
    return parse_org_file(data)


def load_orgs(session: Session, spec: OrgFile) -> list[tuple[OrgSpec, bool]]:
    """Load every org of the file in the caller's transaction: each org, and whether it changed.

    Usernames and program ids are keys of the whole database: one that another org (not in this file) holds
    is refused before anything is written.
    """
    ours = {o.id for o in spec.orgs}
    usernames = {c.username: o.id for o in spec.orgs for c in o.credentials}
    programs = {o.program.id: o.id for o in spec.orgs if o.program}
    problems: list[str] = []
    moving: list[str] = []
    for username, holder in session.execute(select(t.Credential.username, t.Credential.org_id)
                                            .where(t.Credential.username.in_(usernames))):
        if holder not in ours:
            problems.append(f"username {username!r}: already a credential of org {holder}")
        elif holder != usernames[username]:
            moving.append(username)
    for program_id, holder in session.execute(select(t.Program.id, t.Program.org_id)
                                              .where(t.Program.id.in_(programs))):
        if holder != programs[program_id]:
            problems.append(f"program id {program_id}: already the program of org {holder}")
    if problems:
        raise OrgFileError(problems)
    if moving:  # a username that moves between two orgs of the file: free it before either org is loaded
        session.execute(delete(t.Credential).where(t.Credential.username.in_(moving)))
    return [(org, load_org(session, org)) for org in spec.orgs]


def hash_secret(md5_hex: str, salt: bytes | None = None) -> str:
    """A strong hash (scrypt) of the MD5 that HTTP clients send as their password."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(md5_hex.lower().encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_secret(md5_hex: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = hash_secret(md5_hex, bytes.fromhex(salt_hex)).split("$")[2]
    return hmac.compare_digest(expected, digest_hex)


def _client_md5(credential: CredentialSpec) -> str:
    """What the client sends as its password: the org file gives one of the two (never neither)."""
    if credential.password_md5 is not None:
        return credential.password_md5.lower()
    if credential.password is None:
        raise ValueError(f"credential {credential.username!r} has no password")
    return hashlib.md5(credential.password.encode()).hexdigest()


def _side_effects_json(spec: OrgSpec) -> dict[str, Any]:
    return spec.side_effects.model_dump(exclude_none=True)


def load_org(session: Session, spec: OrgSpec) -> bool:
    """Create or replace one org's configuration. Returns whether anything changed."""
    org = session.get(t.Org, spec.id)
    wanted = (spec.name, spec.configs.stored(), _side_effects_json(spec))
    desired_children = _children(spec)
    if org is not None and (org.name, org.configs, org.side_effects) == wanted \
            and _current_children(session, spec.id) == desired_children \
            and _credentials_match(session, spec):
        return False
    if org is None:
        org = t.Org(id=spec.id, version=0)
        session.add(org)
    org.name, org.configs, org.side_effects = wanted
    org.version = (org.version or 0) + 1
    session.flush()
    for model in (t.CustomFieldDef, t.ExtendedFieldDef, t.Till):
        session.execute(delete(model).where(model.org_id == spec.id))
    program_ids = select(t.Program.id).where(t.Program.org_id == spec.id)
    session.execute(delete(t.Slab).where(t.Slab.program_id.in_(program_ids)))
    session.execute(delete(t.Program).where(t.Program.org_id == spec.id))
    session.execute(delete(t.Credential).where(t.Credential.org_id == spec.id))
    session.flush()
    for f in spec.custom_fields:
        session.add(t.CustomFieldDef(org_id=spec.id, name=f.name, regex=f.regex, multi_select=f.multi_select))
    for e in spec.extended_fields:
        session.add(t.ExtendedFieldDef(org_id=spec.id, name=e.name, type=e.type, values=e.values))
    for till in spec.tills:
        session.add(t.Till(org_id=spec.id, code=till.code, store=till.store))
    if spec.program:
        session.add(t.Program(id=spec.program.id, org_id=spec.id))
        session.flush()
        for s in spec.program.slabs:
            session.add(t.Slab(program_id=spec.program.id, number=s.number, name=s.name, threshold=s.threshold,
                               validity_months=s.validity_months, description=s.description))
    for c in spec.credentials:
        md5 = _client_md5(c)
        session.add(t.Credential(username=c.username, org_id=spec.id, password_hash=hash_secret(md5),
                                 till_code=c.till, can_write_customers=c.write_customers))
    return True


def _children(spec: OrgSpec) -> tuple[Any, ...]:
    return (
        sorted((f.name, f.regex, f.multi_select) for f in spec.custom_fields),
        sorted((e.name, e.type, e.values) for e in spec.extended_fields),
        sorted((x.code, x.store) for x in spec.tills),
        (spec.program.id, sorted((s.number, s.name, s.threshold, s.validity_months, s.description)
                                 for s in spec.program.slabs)) if spec.program else None,
    )


def _current_children(session: Session, org_id: int) -> tuple[Any, ...]:
    program = session.scalars(select(t.Program).where(t.Program.org_id == org_id)).first()
    return (
        sorted((f.name, f.regex, f.multi_select)
               for f in session.scalars(select(t.CustomFieldDef).where(t.CustomFieldDef.org_id == org_id))),
        sorted((e.name, e.type, e.values)
               for e in session.scalars(select(t.ExtendedFieldDef).where(t.ExtendedFieldDef.org_id == org_id))),
        sorted((x.code, x.store) for x in session.scalars(select(t.Till).where(t.Till.org_id == org_id))),
        (program.id, sorted((s.number, s.name, s.threshold, s.validity_months, s.description)
                            for s in session.scalars(select(t.Slab).where(t.Slab.program_id == program.id))))
        if program else None,
    )


def _credentials_match(session: Session, spec: OrgSpec) -> bool:
    stored = {c.username: c for c in session.scalars(select(t.Credential).where(t.Credential.org_id == spec.id))}
    if set(stored) != {c.username for c in spec.credentials}:
        return False
    for c in spec.credentials:
        md5 = _client_md5(c)
        row = stored[c.username]
        if (row.till_code, row.can_write_customers) != (c.till, c.write_customers) \
                or not verify_secret(md5, row.password_hash):
            return False
    return True


def read_org_config(session: Session, org_id: int) -> OrgConfig | None:
    org = session.get(t.Org, org_id)
    if org is None:
        return None
    program = session.scalars(select(t.Program).where(t.Program.org_id == org_id)).first()
    slabs = tuple(
        SlabDef(s.number, s.name, s.threshold, s.validity_months, s.description)
        for s in session.scalars(select(t.Slab).where(t.Slab.program_id == program.id).order_by(t.Slab.number))
    ) if program else ()
    rules = org.side_effects or {}
    completion = rules.get("profile_completion") or {}
    return OrgConfig(
        id=org.id,
        configs=dict(org.configs or {}),
        custom_fields={f.name: f.regex for f in
                       session.scalars(select(t.CustomFieldDef).where(t.CustomFieldDef.org_id == org_id))},
        extended_fields={e.name: ExtendedFieldDef(e.name, e.type, tuple(e.values or ())) for e in
                         session.scalars(select(t.ExtendedFieldDef).where(t.ExtendedFieldDef.org_id == org_id))},
        tills=frozenset(session.scalars(select(t.Till.code).where(t.Till.org_id == org_id))),
        program_id=program.id if program else None,
        slabs=slabs,
        side_effects=SideEffectRules(
            profile_completion_points=int(completion.get("points", 0)),
            profile_completion_fields=tuple(completion.get("fields", ())),
            first_fill=tuple(sorted((rules.get("first_fill") or {}).items())),
            loyalty_conversion_points=int((rules.get("loyalty_conversion") or {}).get("points", 0)),
        ),
        version=org.version,
    )


class OrgCache:
    """Per-process cache of org configurations; a changed org `version` is picked up after `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[int, tuple[float, OrgConfig | None]] = {}

    def get(self, session: Session, org_id: int) -> OrgConfig | None:
        now = time.monotonic()
        entry = self._entries.get(org_id)
        # An unknown org is re-read soon: it may be loaded while commands for it wait.
        if entry is not None and now - entry[0] < (self.ttl if entry[1] is not None else min(self.ttl, 2.0)):
            return entry[1]
        config = read_org_config(session, org_id)
        self._entries[org_id] = (now, config)
        return config

    def clear(self) -> None:
        self._entries.clear()
