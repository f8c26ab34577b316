"""Incidents, severities and response timers, paging, post-mortems and the status page."""
