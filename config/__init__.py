"""The project: settings, root URLs, the Celery application, WSGI, the home page and the wiring of
hooks to their subscribers. It may import every app; no app imports it."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
