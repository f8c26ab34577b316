from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from portal import clock


class Command(BaseCommand):
    help = (
        "Shows or shifts the portal clock that every process reads (tests and the demo only): "
        "`clock`, `clock shift 2h`, `clock shift -30m`, `clock reset`."
    )

    def add_arguments(self, parser):
        parser.add_argument("verb", nargs="?", choices=["show", "shift", "reset"], default="show")
        parser.add_argument("duration", nargs="?", help="for shift: 2h, 30m, 1d12h, -90s")

    def handle(self, *args, verb, duration, **options):
        if verb == "shift":
            if not duration:
                raise CommandError("say how far to shift, e.g. `clock shift 2h`")
            try:
                clock.shift(clock.parse_duration(duration))
            except (ValueError, clock.ClockNotShiftable) as exc:
                raise CommandError(str(exc)) from None
        elif verb == "reset":
            clock.reset()
        offset = clock.offset()
        note = "" if offset == timedelta(0) else f" (shifted by {offset})"
        self.stdout.write(f"{clock.now().isoformat()}{note}")
