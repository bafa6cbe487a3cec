# Everything runs inside .venv, created on first use, so a fresh machine needs only
# Python >= 3.11 and make. `make test` also runs the suite on the other end of the supported
# range (.venv-3.N) and installs the built wheel into fresh venvs: see scripts/pythons.py.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck pytest pythons package docs docs-serve bench bench-compare \
	bench-phone bench-vad bench-server samples clean

DEMO_STAMP := $(VENV)/.installed-demo

# Make .venv if it is missing, and install trio-stt into it with the extras $(1).
define install
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@PYTHONWARNINGS='ignore:Editable installation' \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(1)]'
endef

$(STAMP): pyproject.toml
	@echo "Installing trio-stt with its development tools into $(VENV) (the Whisper"
	@echo "recognizer, openai-python and the Agents SDK for the tests, linters, the docs"
	@echo "builder): a few minutes the first time, then only when pyproject.toml changes."
	$(call install,dev)
	@touch $(STAMP) $(DEMO_STAMP)

# The demo needs only the client and the local server with PocketSphinx.
$(DEMO_STAMP): pyproject.toml
	@echo "Installing trio-stt and its local server (PocketSphinx, about 40 MB) into $(VENV):"
	@echo "about a minute the first time."
	$(call install,server)
	@touch $(DEMO_STAMP)

# The main job, offline: the local server with PocketSphinx, the bundled recordings sent as
# files and as live streams, with what was said, what was recognized and the word error rate.
demo: $(DEMO_STAMP)
	@$(BIN)/trio-stt demo

lint: $(STAMP)
	$(BIN)/ruff check trio_stt tests bench scripts examples
	$(BIN)/ruff format --check trio_stt tests bench scripts examples
	$(BIN)/flake8-async --enable=ASYNC1,ASYNC2,ASYNC3,ASYNC4,ASYNC900,ASYNC910,ASYNC911 \
		--startable-in-context-manager=serve,serve_captions,feed_from_microphone,_supervise,_hold_open \
		$$(find trio_stt tests bench scripts examples -name '*.py')

typecheck: $(STAMP)
	$(BIN)/mypy --strict trio_stt scripts examples

# Both cores: many tests wait on real-time audio, and the rest decode speech.
PYTEST_ARGS ?= -n auto
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite on the floor of requires-python and on the newest Python here, where they are
# not .venv's own (each a venv of its own: .venv-3.N).
pythons: $(STAMP)
	$(BIN)/python scripts/pythons.py suite -- $(PYTEST_ARGS)

# sdist and wheel built and checked, the wheel installed with [server] into a fresh venv of
# each of those Pythons, and `trio-stt demo` run from it.
package: $(STAMP)
	$(BIN)/python scripts/pythons.py package

# mkdocs-material prints a notice about MkDocs 2.0 on every run; it is not about this site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .site

# The documentation at http://127.0.0.1:8001, rebuilt as it is edited.
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# One Python, for the edit-test loop.
check: lint typecheck pytest docs

test: check pythons package

bench: $(STAMP)
	$(BIN)/python bench/realtime_cpu.py --streams 1,10,100,500 --seconds 4 --flat-out-seconds 30

# Phone calls: G.711 passed through against converted to 24 kHz PCM16 (about 20 min).
bench-phone: $(STAMP)
	$(BIN)/python bench/telephony.py --streams 100,500 --seconds 20 --repeats 3

# The local server under N = 1, 4, 16 and 50 live sessions of real speech (about 3 min).
bench-server: $(STAMP)
	$(BIN)/python bench/server_throughput.py --sessions 1 4 16 50

bench-vad: $(STAMP)
	$(BIN)/python bench/vad_detectors.py
	cd bench && ../$(BIN)/python client_vad.py --streams 100,500 --seconds 20

# The reference is a benchmark dependency only: it gets a venv of its own, never ours.
REFERENCE := .venv-reference
$(REFERENCE)/.installed:
	@echo "Installing the reference, openai-agents 0.24 with its voice extra, into $(REFERENCE)"
	@echo "(about a minute)..."
	test -x $(REFERENCE)/bin/python || $(PYTHON) -m venv $(REFERENCE)
	$(REFERENCE)/bin/python -m pip install --quiet 'openai-agents[voice]==0.24.0' 'websockets>=14'
	touch $@

# trio-stt against the Agents SDK's asyncio session, side by side, in one run (about 20 min).
bench-compare: $(STAMP) $(REFERENCE)/.installed
	$(BIN)/python bench/compare.py --reference-python $(REFERENCE)/bin/python

# Regenerate trio_stt/samples/ (needs Debian's flite: apt-get install flite).
samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) .venv-3.* $(REFERENCE) .site .mypy_cache .pytest_cache .ruff_cache
