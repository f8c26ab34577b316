# The production image: one image, run as web (gunicorn), worker or beat by its command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GREENLIGHT_VAR_DIR=/var/lib/greenlight

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /app greenlight \
    && mkdir -p /var/lib/greenlight && chown greenlight /var/lib/greenlight

WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY --chown=greenlight . .
# Static files are collected at build time; no secret is needed for that.
RUN SECRET_KEY=collectstatic-only-not-a-secret-0000000000 python manage.py collectstatic --noinput -v0

USER greenlight
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
