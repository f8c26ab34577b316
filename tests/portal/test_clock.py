import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from portal import clock
from tests.conftest import ROOT


def test_clock_follows_real_time_by_default():
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=1)
    assert clock.offset() == timedelta(0)


def test_clock_shift_moves_now_and_reset_returns():
    clock.shift(timedelta(hours=49))
    assert clock.now() - timezone.now() > timedelta(hours=48, minutes=59)
    clock.shift(timedelta(hours=-1))
    assert clock.offset() == timedelta(hours=48)
    clock.reset()
    assert clock.offset() == timedelta(0)


def test_clock_shift_is_seen_by_another_process():
    clock.shift(timedelta(days=3))
    script = "import django; django.setup(); from portal import clock; print(clock.offset().total_seconds())"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CLOCK_FILE": str(settings.CLOCK_FILE),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip().splitlines()[-1]) == timedelta(days=3).total_seconds()


def test_clock_command_shifts_and_resets(capsys):
    call_command("clock", "shift", "1d2h")
    assert clock.offset() == timedelta(days=1, hours=2)
    assert "shifted by 1 day, 2:00:00" in capsys.readouterr().out
    call_command("clock", "reset")
    assert clock.offset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("-30m", timedelta(minutes=-30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_parse_duration(text, expected):
    assert clock.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "2x", "h"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(ValueError, match="is not a duration"):
        clock.parse_duration(text)
