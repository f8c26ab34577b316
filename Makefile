# The two commands a person needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

TEST_DATABASE_URL ?= postgres://greenlight:greenlight@127.0.0.1:5432/greenlight
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_ENV = DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_REPLICA_URL=$(TEST_DATABASE_URL) \
	REDIS_URL=$(TEST_REDIS_URL) GREENLIGHT_VAR_DIR=$(CURDIR)/var/test LOG_FORMAT=text \
	SECRET_KEY=test-only-key-not-secret-0123456789abcdef CLOCK_FILE=$(CURDIR)/var/test/clock-offset

.PHONY: demo test install lint format services lock bench clean

$(VENV)/.installed: requirements-dev.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed

demo: export LOG_FORMAT = text
# The simulated production's AWS: a moto server the `production` process runs.
demo: export AWS_ENDPOINT_URL ?= http://127.0.0.1:5100
demo: export AWS_ACCESS_KEY_ID ?= demo
demo: export AWS_SECRET_ACCESS_KEY ?= demo
demo: export AWS_REGION ?= us-east-1
demo: install
	@command -v ssh-keygen >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo_seed
	@echo ""
	@echo "  Greenlight is starting at http://localhost:$(PORT)/"
	@echo "  Sign in as any of the team above with password greenlight-demo, and the code from"
	@echo "  .venv/bin/python manage.py demo_otp USERNAME (or an authenticator app and the URI above)."
	@echo "  Riley (release manager) deploys CHG-000004, scheduled now in the demo's clock, from its page"
	@echo "  and watches it go 0 -> 25 -> 50 -> 100 % on the simulated production, then monitored."
	@echo "  Then: Environments -> Simulated production -> next release Errors, and deploy CHG-000005"
	@echo "  (Take its next free slot first): the gate fails at 25 %, it rolls back by itself, a P1 opens."
	@echo "  Ctrl-C stops the web server, worker, beat and the simulated production."
	@echo ""
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho --procfile Procfile.demo start --port $(PORT)

services:
	bin/test-services

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install services lint
	@start=$$(date +%s); \
	$(TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS); status=$$?; \
	echo "make test: the suite ran in $$(( $$(date +%s) - start )) s"; \
	exit $$status

lock: install
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

bench: install services
	@command -v wrk >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	$(TEST_ENV) $(PY) bench/audit_chain.py
	$(TEST_ENV) $(PY) bench/changes.py
	$(TEST_ENV) $(PY) bench/deploy.py

clean:
	rm -rf var/ .pytest_cache
