# Everything runs inside .venv, created on first use, so a fresh machine needs only
# Python >= 3.10 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check trio_stt tests bench
	$(BIN)/ruff format --check trio_stt tests bench
	$(BIN)/flake8-async --enable=ASYNC1,ASYNC2,ASYNC3,ASYNC4,ASYNC900,ASYNC910,ASYNC911 \
		--startable-in-context-manager=_watchdog,_listen,_process,_send_audio,serve \
		$$(find trio_stt tests bench -name '*.py')

typecheck: $(STAMP)
	$(BIN)/mypy --strict trio_stt

pytest: $(STAMP)
	$(BIN)/pytest

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .site

test: lint typecheck pytest docs

bench: $(STAMP)
	$(BIN)/python bench/realtime_cpu.py --streams 1,10,100,500 --seconds 4 --flat-out-seconds 30

clean:
	rm -rf $(VENV) .site .mypy_cache .pytest_cache .ruff_cache
