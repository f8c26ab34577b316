"""Configuration from the environment.

Every setting Greenlight reads from outside comes through here, so that a missing or malformed
variable stops start-up with one line that names it instead of a traceback from deep inside Django.
"""

import hashlib
import ipaddress
import os
import re
import secrets
import sys
from pathlib import Path
from typing import overload
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GREENLIGHT_VAR_DIR", BASE_DIR / "var"))


class ConfigurationError(Exception):
    """A variable is missing or malformed; the message names it."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


def stop(error: ConfigurationError) -> None:
    """Leave with one line on stderr naming the variable."""
    sys.exit(f"greenlight: configuration error: {error}")


@overload
def text(name: str, default: str) -> str: ...
@overload
def text(name: str, default: None = None) -> str | None: ...
def text(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def flag(name: str, default: bool = False) -> bool:
    value = text(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(name, f"expected true or false, got {value!r}")


def choice(name: str, default: str, allowed: set[str]) -> str:
    value = text(name, default)
    if value.upper() in allowed:
        return value.upper()
    if value.lower() in allowed:
        return value.lower()
    raise ConfigurationError(name, f"expected one of {', '.join(sorted(allowed))}, got {value!r}")


def origins(name: str) -> list[str]:
    """Comma-separated origins such as https://greenlight.example.com."""
    result = word_list(name, [])
    for origin in result:
        if urlsplit(origin).scheme not in {"http", "https"} or not urlsplit(origin).netloc:
            raise ConfigurationError(name, f"{origin!r} is not an origin like https://greenlight.example.com")
    return result


def integer(name: str, default: int) -> int:
    value = text(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(name, f"expected a whole number, got {value!r}") from None


def word_list(name: str, default: list[str]) -> list[str]:
    value = text(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of addresses or CIDR ranges."""
    return networks_of(word_list(name, []), name=name)


def networks_of(items: list[str], *, name: str = "") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    result = []
    for item in items:
        try:
            result.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(name, f"{item!r} is not an IP address or CIDR range") from None
    return result


def hosts(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of host names (`.example.com` for a domain and its subdomains),
    addresses and CIDR ranges."""
    items = word_list(name, default)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            if not re.fullmatch(
                r"\.?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?",
                item,
            ):
                raise ConfigurationError(
                    name, f"{item!r} is neither a host name nor an IP address or CIDR range"
                ) from None
    return [item.lower() for item in items]


def secret_key(name: str = "SECRET_KEY", *, generate: bool = True) -> str:
    """The variable, or (on one machine) a key generated once into var/ so a demo restarts with
    the same sessions. A real deployment must give it: every container needs the same key."""
    value = text(name)
    if value is not None:
        if len(value) < 32:
            raise ConfigurationError(name, "must be at least 32 characters long")
        return value
    if not generate:
        raise ConfigurationError(name, "is required when DATABASE_URL is not SQLite (a real deployment)")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def secret(name: str, *, required: bool, derived_from: str | None = None) -> str | None:
    """A key of at least 32 characters. Unset: one derived from `derived_from` (the demo's), or
    None where it is not `required` (another variable gives it), or a stop."""
    value = text(name)
    if value is not None:
        if len(value) < 32:
            raise ConfigurationError(name, "must be at least 32 characters long")
        return value
    if derived_from is not None:
        return hashlib.sha256(f"{name}|{derived_from}".encode()).hexdigest()
    if required:
        raise ConfigurationError(name, "is required outside the demo")
    return None


SQLITE_OPTIONS = {
    # Several processes write at once in the demo (web, worker, beat): WAL lets readers go on
    # while one writes, IMMEDIATE takes the write lock at BEGIN so two writers never deadlock
    # upgrading a read lock, and the busy timeout makes a writer wait instead of failing.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;PRAGMA foreign_keys=ON;"
    ),
}


def database(name: str, default: str | None) -> dict | None:
    """A Django DATABASES entry from a URL: PostgreSQL (psycopg 3) or SQLite."""
    value = text(name, default)
    if value is None:
        return None
    scheme = urlsplit(value).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ConfigurationError(
            name,
            f"unsupported database URL {_redact(value)!r}: use postgres://... or sqlite:///...",
        )
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ConfigurationError(name, f"not a valid database URL: {exc}") from None
    if not config.get("NAME"):
        raise ConfigurationError(name, f"{_redact(value)!r} names no database")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    else:
        config["ENGINE"] = "django.db.backends.postgresql"
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        config["CONN_MAX_AGE"] = integer("DATABASE_CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
        # A query a connection has run this many times is prepared on the server: planning the
        # change page's seven-table join costs more than running it. 0 turns preparing off (a
        # pooler in transaction mode, such as PgBouncer's, cannot keep prepared statements).
        threshold = integer("DATABASE_PREPARE_THRESHOLD", 2)
        if threshold < 0:
            raise ConfigurationError("DATABASE_PREPARE_THRESHOLD", f"expected 0 or more, got {threshold}")
        if threshold:
            config["OPTIONS"].update(server_side_binding=True, prepare_threshold=threshold)
    return config


def redis_url(name: str) -> str | None:
    value = text(name)
    if value is not None and urlsplit(value).scheme not in {"redis", "rediss"}:
        raise ConfigurationError(name, f"expected redis://host:port/db, got {_redact(value)!r}")
    return value


def email(name: str) -> dict:
    """Django e-mail settings from EMAIL_URL (smtp://user:password@host:587/?tls=True)."""
    value = text(name)
    if value is None:
        return {}
    try:
        config = environ.Env.email_url_config(value)
    except Exception as exc:
        raise ConfigurationError(name, f"not a valid e-mail URL: {exc}") from None
    if not config.get("EMAIL_BACKEND"):
        raise ConfigurationError(name, f"unsupported e-mail URL {_redact(value)!r}")
    return config


def required(name: str) -> str:
    value = text(name)
    if value is None:
        raise ConfigurationError(name, "is required with single sign-on (OIDC_RP_CLIENT_ID is set)")
    return value


def mapping(name: str, *, keys: set[str]) -> dict[str, str]:
    """key=value pairs separated by commas, e.g. release_manager=gl-release,sre=gl-sre."""
    result = {}
    for item in word_list(name, []):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or key not in keys:
            raise ConfigurationError(
                name, f"{item!r} is not KEY=VALUE with KEY one of {', '.join(sorted(keys))}"
            )
        result[key] = value
    return result


@overload
def url(name: str, default: str, *, required: bool = False) -> str: ...
@overload
def url(name: str, default: None = None, *, required: bool = False) -> str | None: ...
def url(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = text(name, default)
    if value is None and required:
        raise ConfigurationError(name, "is required with single sign-on (OIDC_RP_CLIENT_ID is set)")
    if value is not None and urlsplit(value).scheme not in {"http", "https"}:
        raise ConfigurationError(name, f"expected an http(s) URL, got {_redact(value)!r}")
    return value


def _redact(value: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(value)
    if parts.password:
        return value.replace(f":{parts.password}@", ":***@")
    return value
