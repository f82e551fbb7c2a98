# TagTrail developer commands. Every target creates and uses .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-once test test-faults check format-check lint format typecheck contracts unit browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: the whole pipeline on the embedded defaults; serves http://127.0.0.1:8000 until Ctrl-C
demo: $(STAMP)
	$(BIN)/tagtrail demo

## demo-once: a fixed stretch of simulated time as fast as possible, printed as JSON
demo-once: $(STAMP)
	$(BIN)/tagtrail demo --once --json

## test: every check and the whole test suite (what CI runs)
test: check

## check: format, lint, types, import contracts, then the tests
check: $(STAMP) format-check lint typecheck contracts unit

format-check: $(STAMP)
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP) browser
	$(BIN)/pytest -q -rfEs -n 2 --dist loadfile --durations=15

## browser: the headless Chromium and ChromeDriver the console tests drive, and the CJK font of
## the console's screenshots and the PDF case sheet (Debian packages)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  && [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver fonts-wqy-microhei >/dev/null; \
	else echo "install chromium, chromium-driver and fonts-wqy-microhei (Debian) for the console tests" >&2; exit 1; fi

## test-faults: the whole fault-injection suite, ~30 min (make test runs only its short tests)
test-faults: $(STAMP)
	TAGTRAIL_FAULTS=full $(BIN)/pytest -q -m faults tests/faults

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
