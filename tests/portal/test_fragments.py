"""Fragments are drawn from the cache, and without it."""

import pytest


@pytest.mark.django_db
def test_fragments_are_drawn_when_the_cache_cannot_be_reached(settings):
    import socket

    from portal import fragments

    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    rows = fragments.render_each("includes/form.html", "form", [None], lambda item: ["nothing"])
    assert rows == [fragments.render_one("includes/form.html", {"form": None}, ["nothing"])]
