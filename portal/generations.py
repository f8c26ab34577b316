"""Generation numbers, which keep a cache entry from outliving the rows it was read from.

A generation is a counter in the cache, under its name. An entry's key carries the generation
of what it was read from. A write to that bumps the generation twice: when the row is written,
and again when its transaction commits, so a request that read the old rows meanwhile can only
fill an entry under a generation nobody reads any more. A write inside a transaction that has
not committed yet is `pending`: the writer reads its own rows and keeps nothing of them, as they
may still roll back. A counter starts from the clock, so no generation is reused after the cache
lost it.

A cache that cannot be reached never stops a write, nor a read of the rows: the read goes to
them, the bump is logged. Entries expire, which bounds what a lost bump, or a write made outside
the ORM (a restore, raw SQL), can leave behind. On the file cache (no REDIS_URL, a command run
by hand) a counter's increment is not atomic across processes.
"""

import logging
import pickle
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
# What unpickling an entry written by other code (a release before this one) can raise.
UNREADABLE = (pickle.UnpicklingError, AttributeError, ImportError, EOFError)

T = TypeVar("T")


def remembered(prefix: str, names: list[str], read: Callable[[], T], ttl: int) -> T:
    """`read()`'s result, kept under `prefix` and the generations of `names` for the next call.
    A transaction that wrote to any of `names` reads its own rows, and keeps nothing of them: they
    may yet roll back, and an entry another request filled meanwhile does not hold them."""
    if pending(*names):
        return read()
    try:
        key = f"{prefix}:" + ":".join(map(str, current(*names)))
        found = cache.get(key)
    except (*CACHE_ERRORS, *UNREADABLE):
        return read()
    if found is not None:
        return found
    value = read()
    with suppress(*CACHE_ERRORS):
        cache.set(key, value, ttl)
    return value


def current(*names: str) -> list[int]:
    """The generation of each name, in one read of the cache."""
    found = cache.get_many(names)
    return [found[name] if name in found else _start(name) for name in names]


def bump(name: str) -> None:
    """A write to what `name` stands for: a new generation now and another when it commits."""
    _bump(name)

    def bump_on_commit() -> None:
        _bump(name)

    bump_on_commit.generation = name
    transaction.on_commit(bump_on_commit, robust=True)


def pending(*names: str) -> bool:
    """Whether the transaction running here wrote to any of `names` and has not committed: its
    commit bumps still wait in the connection's list (a rollback drops them)."""
    return any(getattr(func, "generation", None) in names for _, func, _ in connection.run_on_commit)


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
