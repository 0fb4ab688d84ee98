# CellCurate developer commands. Everything installs into .venv/ in the repository root.
#
#   make demo   install, build the demo project and serve it on http://127.0.0.1:8000
#   make test   install and run the test suite (embedded mode: SQLite, eager tasks)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, from one fixed pair: segment-anything imports torchvision, and the two must
# match. Set TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu for a CPU-only build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install demo demo-data serve test test-services browser lint clean-demo bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(TORCH_INDEX) $(TORCH_SPEC)
	$(BIN)/pip install -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

# Real browsers for the UI tests: Debian's chromium, driven by Playwright (no browser
# download), and Debian's firefox-esr, driven over Marionette (Firefox's own protocol).
browser:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="chromium"; \
	[ -x /usr/bin/firefox-esr ] || missing="$$missing firefox-esr"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	     (apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing >/dev/null)); \
	  else \
	    echo "The UI tests need Debian's$$missing: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

demo-data: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=1 $(BIN)/python manage.py demo --base-url http://$(HOST):$(PORT)

# The demo runs long tasks (training, QA of many images, exports) in a Celery worker beside
# the web server, through kombu's filesystem transport under var/queue: no broker service,
# and no request waits for a long task.
demo: demo-data
	@echo "Serving on http://$(HOST):$(PORT)/ with an embedded worker (Ctrl-C stops both)"
	export CELLCURATE_EMBEDDED_WORKER=1 DJANGO_DEBUG=1; \
	$(BIN)/celery -A config worker --pool=solo -Q default,training --beat \
	  --schedule var/celerybeat-schedule --without-gossip --without-mingle --without-heartbeat \
	  --loglevel=INFO --logfile var/worker.log & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

serve: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: install
	$(BIN)/python bench/metrics_bench.py
	$(BIN)/python bench/consensus_bench.py
	$(BIN)/python bench/noise_bench.py

clean-demo:
	rm -rf var/db.sqlite3 var/media
