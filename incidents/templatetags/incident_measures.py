"""How an incident's measures read on a page: `{% incident_measures incident as m %}` gives its TTD,
TTA and TTR as of the portal clock's now; `|duration` puts seconds or a timedelta in words."""

from django import template

from incidents.measures import Measures, duration_in_words, incident_measures
from portal import clock

register = template.Library()


@register.simple_tag(name="incident_measures")
def measures_of(incident) -> Measures:
    return incident_measures(incident, clock.now())


@register.filter
def duration(value) -> str:
    return duration_in_words(value)


@register.filter
def summary_note(summary) -> str:
    """'3 of 4, target < 15 min, 1 running': what a share within target is made of."""
    parts = []
    if summary.decided:
        parts.append(f"{summary.met} of {summary.decided}")
    if summary.target is not None:
        parts.append(f"target {summary.target_words}")
    if summary.running:
        parts.append(f"{summary.running} running")
    return ", ".join(parts)
