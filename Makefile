# The two commands a person needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

TEST_DATABASE_URL ?= postgres://greenlight:greenlight@127.0.0.1:5432/greenlight
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_ENV = DEMO=true DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_REPLICA_URL=$(TEST_DATABASE_URL) \
	REDIS_URL=$(TEST_REDIS_URL) GREENLIGHT_VAR_DIR=$(CURDIR)/var/test LOG_FORMAT=text \
	SECRET_KEY=test-only-key-not-secret-0123456789abcdef CLOCK_FILE=$(CURDIR)/var/test/clock-offset

.PHONY: demo test install lint security format services lock bench clean

$(VENV)/.installed: requirements-dev.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed

demo: export LOG_FORMAT = text
# The simulated production's AWS: a moto server the `production` process runs.
demo: export AWS_ENDPOINT_URL ?= http://127.0.0.1:5100
demo: export AWS_ACCESS_KEY_ID ?= demo
demo: export AWS_SECRET_ACCESS_KEY ?= demo
demo: export AWS_REGION ?= us-east-1
demo: install
	PORT=$(PORT) bin/demo

services:
	bin/test-services

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(TEST_ENV) $(PY) -W ignore::RuntimeWarning manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(VENV)/bin/mypy

# bandit (no high finding may stand) and the dependencies against the advisory database.
security: install
	$(PY) bin/security-scan

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install services lint security
	@start=$$(date +%s); \
	$(TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS); status=$$?; \
	echo "make test: the suite ran in $$(( $$(date +%s) - start )) s"; \
	exit $$status

# The locks carry hashes, and `make install` refuses a package whose hash differs.
lock:
	test -x $(VENV)/bin/pip-compile || { python3 -m venv $(VENV) && $(VENV)/bin/pip install --quiet pip-tools; }
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

bench: install services
	@command -v wrk >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	$(TEST_ENV) $(PY) bench/audit_chain.py
	$(TEST_ENV) $(PY) bench/changes.py
	$(TEST_ENV) $(PY) bench/deploy.py
	$(TEST_ENV) $(PY) bench/engine_scale.py

clean:
	rm -rf var/ .pytest_cache
