"""How a stage's evidence reads on the deployment page: each check once, at its latest value
against its threshold, with a small chart of its values over the rounds (the last minutes)."""

from django import template
from django.utils.html import format_html

from deployments.judge import CheckName

register = template.Library()

WIDTH, HEIGHT = 120, 28
# The checks worth a chart: the metrics, whose values move (a status code or a health count does not).
CHARTED = frozenset({CheckName.REQUESTS, CheckName.ERROR_RATE, CheckName.P95, CheckName.P99})


@register.filter
def latest_checks(stage) -> list[dict]:
    """Each check of the stage once, as last judged, with the numbers it measured round by round."""
    latest, series = {}, {}
    for check in stage.checks:
        latest[check["name"]] = check
        value = check.get("value")
        if check["name"] in CHARTED and isinstance(value, int | float) and not isinstance(value, bool):
            series.setdefault(check["name"], []).append(value)
    return [
        {**check, "series": series.get(name, []), "rounds": _rounds(stage, name)}
        for name, check in latest.items()
    ]


def _rounds(stage, name: str) -> int:
    return sum(1 for c in stage.checks if c["name"] == name)


@register.simple_tag
def sparkline(values: list, threshold=None) -> str:
    """An inline SVG line of `values` (oldest first) with the threshold as a dashed line when it
    falls in view; nothing for fewer than two values."""
    if len(values) < 2:
        return ""
    limit = threshold if isinstance(threshold, int | float) else None
    top = max([*values, limit or 0]) or 1
    step = WIDTH / (len(values) - 1)

    def y(value: float) -> float:
        return round(HEIGHT - 2 - (value / top) * (HEIGHT - 4), 1)

    points = " ".join(f"{round(i * step, 1)},{y(v)}" for i, v in enumerate(values))
    line = (
        format_html('<line class="limit" x1="0" x2="{}" y1="{}" y2="{}"/>', WIDTH, y(limit), y(limit))
        if limit is not None
        else ""
    )
    label = f"{len(values)} values from {values[0]} to {values[-1]}" + (
        f", limit {limit}" if limit is not None else ""
    )
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        '{}<polyline points="{}"/></svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        line,
        points,
    )
