"""Generation numbers, which keep a cache entry from outliving the rows it was read from.

An entry's key carries the generation of what it was read from. A write to that bumps the
generation twice: when the row is written, and again when its transaction commits, so a request
that read the old rows meanwhile can only fill an entry under a generation nobody reads any more.
A write inside a transaction that has not committed yet is `pending`: the writer must not fill
an entry from rows that may still roll back. A counter starts from the clock, so no generation is
reused after the cache lost it.

A cache that cannot be reached never stops a write nor a read: the read goes to the rows, the
bump is logged. Entries expire, which bounds what a lost bump, or a write made outside the ORM
(a restore, raw SQL), can leave behind.
"""

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

from django.core.cache import cache
from django.db import connection, transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What Django's caches raise when their server or directory cannot be reached.
CACHE_ERRORS = (RedisError, OSError)

T = TypeVar("T")


def remembered(prefix: str, names: list[str], read: Callable[[], T], ttl: int) -> T:
    """`read()`'s result, kept under `prefix` and the generations of `names` for the next call."""
    try:
        key = f"{prefix}:" + ":".join(map(str, current(*names)))
        found = cache.get(key)
    except CACHE_ERRORS:
        return read()
    if found is not None:
        return found
    value = read()
    if not pending(*names):  # rows this transaction wrote may yet roll back
        with suppress(CACHE_ERRORS):
            cache.set(key, value, ttl)
    return value


def current(*names: str) -> list[int]:
    """The generation of each name, in one read of the cache."""
    keys = [_key(name) for name in names]
    found = cache.get_many(keys)
    return [found[key] if key in found else _start(key) for key in keys]


def bump(name: str) -> None:
    """A write to what `name` stands for: a new generation now and another when it commits."""
    key = _key(name)
    _bump(key)

    def bump_on_commit() -> None:
        _bump(key)

    bump_on_commit.generation_key = key
    transaction.on_commit(bump_on_commit)


def pending(*names: str) -> bool:
    """Whether the transaction running here wrote to any of `names` and has not committed: its
    commit bumps still wait in the connection's list (a rollback drops them)."""
    keys = {_key(name) for name in names}
    return any(getattr(func, "generation_key", None) in keys for _, func, _ in connection.run_on_commit)


def _key(name: str) -> str:
    return f"generation:{name}"


def _start(key: str) -> int:
    cache.add(key, time.time_ns(), timeout=None)
    return cache.get(key)


def _bump(key: str) -> None:
    try:
        try:
            cache.incr(key)
        except ValueError:  # no counter yet: a fresh one is a new generation too
            _start(key)
    except CACHE_ERRORS as error:
        logger.warning("%s not bumped, the cache cannot be reached (%s): its entries expire", key, error)
