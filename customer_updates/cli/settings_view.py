"""What `customer-updates settings` prints: each setting's variable, its current value (secrets masked),
its default when the value differs, and its description, wrapped to the terminal rather than cut."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices

from customer_updates.settings import Settings

MASK = "****"
# Values that are credentials as a whole (user:password): only what precedes the first colon is shown.
_CREDENTIALS = {"flower_basic_auth"}


def variable(name: str) -> str:
    """The environment variable a setting is read from (the first alias where it has several)."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def masked_url(text: str) -> str:
    """A URL with its password replaced by the mask (scheme, user, host, port and path stay readable)."""
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return MASK
    if not password:
        return text
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def shown(name: str, value: Any) -> str:
    text = str(value)
    if name in _CREDENTIALS and text:
        return f"{text.split(':', 1)[0]}:{MASK}" if ":" in text else MASK
    if "://" in text:
        # A failover list (RabbitMQ nodes separated by ';') holds a password per URL.
        return ";".join(masked_url(url) for url in text.split(";"))
    return text


def rows(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        out.append({"setting": name, "variable": variable(name), "value": shown(name, value),
                    "default": shown(name, info.default), "is_default": value == info.default,
                    "description": info.description or ""})
    return out


def render(settings: Settings, width: int | None = None) -> str:
    """Each setting as `VARIABLE = value`, then its description indented; no line is cut."""
    width = max(40, width or shutil.get_terminal_size((100, 24)).columns)
    lines = []
    for row in rows(settings):
        head = f"{row['variable']} = {row['value']!s}" if row["value"] != "" else f"{row['variable']} = (empty)"
        if not row["is_default"]:
            head += f"   (default: {row['default'] or '(empty)'})"
        lines.append(head)
        lines += textwrap.wrap(row["description"], width=width, initial_indent="    ", subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)
