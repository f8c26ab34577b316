"""What makes the audit chain hard to rewrite from inside the database: its hashes are keyed with a
secret the database never holds, and its head is written out, every few minutes, to storage the
application cannot change afterwards (an anchor).

The key is AUDIT_KEY (or the AWS Secrets Manager secret AUDIT_KEY_SECRET_ARN names); each event
records which key hashed it, so a rotated key keeps verifying the events it hashed as long as it
is listed among the previous keys. The anchors go to an S3 bucket with Object Lock in compliance
mode (integrations.anchors, registered by config.wiring) when AUDIT_ANCHOR_BUCKET is set, and to
files under var/ otherwise.
"""

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from django.conf import settings

# How long a key read from Secrets Manager is kept before it is read again (a rotation reaches
# every process within this time).
KEY_SOURCE_SECONDS = 300


@dataclass(frozen=True)
class AuditKeys:
    current: str
    previous: tuple[str, ...] = ()

    def by_id(self) -> dict[str, str]:
        return {key_id_of(key): key for key in (self.current, *self.previous)}


def key_id_of(key: str) -> str:
    """A short name of a key that says nothing of the key itself."""
    return hashlib.sha256(f"greenlight-audit-key|{key}".encode()).hexdigest()[:12]


KeySource = Callable[[str], AuditKeys]  # (secret ARN) -> the keys it holds
_key_source: KeySource | None = None
_keys_cache: tuple[float, AuditKeys] | None = None
_keys_lock = threading.Lock()


def key_source_register(source: KeySource) -> None:
    global _key_source
    _key_source = source


class AuditKeyUnavailable(RuntimeError):
    """The audit key cannot be had: no event can be written or checked without it."""


def keys() -> AuditKeys:
    """The current key and those it replaced, from the settings or Secrets Manager."""
    global _keys_cache
    arn = settings.AUDIT_KEY_SECRET_ARN
    if not arn:
        current: str | None = settings.AUDIT_KEY
        if not current:
            raise AuditKeyUnavailable("Neither AUDIT_KEY nor AUDIT_KEY_SECRET_ARN is set.")
        return AuditKeys(current, tuple(settings.AUDIT_PREVIOUS_KEYS))
    with _keys_lock:
        if _keys_cache is not None and _keys_cache[0] > time.monotonic():
            return _keys_cache[1]
        if _key_source is None:
            raise AuditKeyUnavailable("AUDIT_KEY_SECRET_ARN is set but nothing reads Secrets Manager.")
        found = _key_source(arn)
        _keys_cache = (time.monotonic() + KEY_SOURCE_SECONDS, found)
        return found


def keys_forget() -> None:
    global _keys_cache
    with _keys_lock:
        _keys_cache = None


# Anchors.


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment: its last event, that event's hash, how many events there
    were up to it, and when it was written (and where, for the verdict to name)."""

    event_id: int
    hash: str
    count: int
    written_at: datetime
    where: str = ""

    def as_json(self) -> str:
        data = asdict(self)
        data.pop("where")
        data["written_at"] = self.written_at.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> "Anchor":
        data = json.loads(text)
        return cls(
            event_id=int(data["event_id"]),
            hash=str(data["hash"]),
            count=int(data["count"]),
            written_at=datetime.fromisoformat(data["written_at"]),
            where=where,
        )


class AnchorStore(Protocol):
    def put(self, anchor: Anchor) -> str:
        """Writes the anchor for good; answers where it is."""

    def newest(self) -> Anchor | None: ...


def anchor_name(anchor: Anchor) -> str:
    """Names sort newest first (the seconds left until the year 2286, then the events left until
    the trillionth), so the newest anchor is the first a listing gives, however many there are;
    the event's own id ends the name for a person reading the list."""
    seconds_left = 10_000_000_000 - int(anchor.written_at.timestamp())
    events_left = 1_000_000_000_000 - anchor.event_id
    return f"{seconds_left:010d}-{events_left:013d}-event-{anchor.event_id}.json"


class FileAnchorStore:
    """Anchors as read-only files in a folder: for one machine, or where no bucket is set. Only as
    safe as the folder; a production install sets AUDIT_ANCHOR_BUCKET."""

    def __init__(self, folder: Path):
        self.folder = folder

    def put(self, anchor: Anchor) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / anchor_name(anchor)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(descriptor, "w") as file:
            file.write(anchor.as_json())
        return str(path)

    def newest(self) -> Anchor | None:
        if not self.folder.is_dir():
            return None
        names = sorted(path.name for path in self.folder.glob("*.json"))
        if not names:
            return None
        path = self.folder / names[0]
        return Anchor.from_json(path.read_text(), where=str(path))


BucketStoreFactory = Callable[..., AnchorStore]  # (*, bucket, prefix, retention_days) -> store
_bucket_store: BucketStoreFactory | None = None


def bucket_store_register(factory: BucketStoreFactory) -> None:
    global _bucket_store
    _bucket_store = factory


def anchor_store() -> AnchorStore:
    """The S3 bucket when AUDIT_ANCHOR_BUCKET is set, the folder under var/ otherwise."""
    if settings.AUDIT_ANCHOR_BUCKET:
        if _bucket_store is None:
            raise AuditKeyUnavailable("AUDIT_ANCHOR_BUCKET is set but nothing writes to S3.")
        return _bucket_store(
            bucket=settings.AUDIT_ANCHOR_BUCKET,
            prefix=settings.AUDIT_ANCHOR_PREFIX,
            retention_days=settings.AUDIT_ANCHOR_RETENTION_DAYS,
        )
    return FileAnchorStore(Path(settings.AUDIT_ANCHOR_FOLDER))
