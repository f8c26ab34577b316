"""The one clock all time logic reads.

`now()` is the real UTC time plus an offset that tests and the demo may shift. The offset lives in a
small file (CLOCK_FILE) so that every process on the machine, web, worker and beat, sees the same
shifted time. Production sets no CLOCK_FILE, and there the clock is the real one, whatever is on
disk. Nothing sleeps waiting for a deadline: shift the clock instead (`manage.py clock shift 2h`).
"""

import math
import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

# Far enough for any test or demo, near enough that datetime arithmetic never overflows.
MAX_OFFSET = timedelta(days=3650)

_cache: dict[str, tuple[tuple[int, int, int], timedelta]] = {}


class ClockNotShiftable(Exception):
    pass


def now() -> datetime:
    return timezone.now() + offset()


def offset() -> timedelta:
    path = settings.CLOCK_FILE
    if not path:
        return timedelta(0)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return timedelta(0)
    # The file is replaced, never edited: a new inode tells a change apart even within one mtime tick.
    stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        seconds = float(Path(path).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        seconds = 0.0
    if not math.isfinite(seconds) or abs(seconds) > MAX_OFFSET.total_seconds():
        seconds = 0.0
    value = timedelta(seconds=seconds)
    _cache[path] = (stamp, value)
    return value


def set_offset(value: timedelta) -> None:
    """Writes the offset atomically, so a reader never sees half a number."""
    if not settings.CLOCK_FILE:
        raise ClockNotShiftable("the clock shifts only where CLOCK_FILE is set (the demo and tests)")
    if abs(value) > MAX_OFFSET:
        raise ValueError(f"shift the clock by at most {MAX_OFFSET.days} days")
    path = Path(settings.CLOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as handle:
        handle.write(f"{value.total_seconds()!r}\n")
    os.replace(handle.name, path)
    _cache.pop(str(path), None)


def shift(by: timedelta) -> datetime:
    set_offset(offset() + by)
    return now()


def reset() -> None:
    if settings.CLOCK_FILE:
        Path(settings.CLOCK_FILE).unlink(missing_ok=True)
        _cache.pop(str(settings.CLOCK_FILE), None)


_DURATION = re.compile(r"^([+-]?)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """'2h', '-30m', '1d12h', '90s' -> timedelta."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.group(i) for i in range(2, 6)):
        raise ValueError(f"{text!r} is not a duration like 2h, 30m, 1d12h or -90s")
    sign, days, hours, minutes, seconds = match.groups()
    value = timedelta(
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -value if sign == "-" else value
