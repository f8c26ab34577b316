"""The one clock all time logic reads.

`now()` is the real UTC time plus an offset that tests and the demo may shift. The offset lives in a
small file (CLOCK_FILE) so that every process on the machine, web, worker and beat, sees the same
shifted time; when the file is absent the offset is zero. Nothing sleeps waiting for a deadline:
shift the clock instead (`python manage.py clock shift 2h`).
"""

import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

_cache: dict[str, tuple[int, timedelta]] = {}


def now() -> datetime:
    return timezone.now() + offset()


def offset() -> timedelta:
    path = settings.CLOCK_FILE
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return timedelta(0)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        value = timedelta(seconds=float(Path(path).read_text().strip() or 0))
    except (FileNotFoundError, ValueError):
        value = timedelta(0)
    _cache[path] = (stamp, value)
    return value


def set_offset(value: timedelta) -> None:
    """Writes the offset atomically, so a reader never sees half a number."""
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
