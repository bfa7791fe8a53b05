# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Benchmarks and the zoo need timm/torchvision (several GB); they get a venv of their own.
ZOO_VENV ?= .venv-zoo
ZOO_BIN := $(ZOO_VENV)/bin
# The peer the black-box bench compares with, OpenVINO XAI 1.1.0, pins an older OpenVINO.
PEER_VENV ?= .venv-peer
PEER_BIN := $(PEER_VENV)/bin
DEMO_OUT ?= demo_out

.PHONY: demo test test-fast fuzz lint dist docs bench bench-compiler bench-runtime zoo export-demo-model \
	browser clean

# Two markers: the runtime dependencies (all the demo needs), then the dev extra on top
# (pytest, ruff, mypy, torch for the tiny test models).
# passes/ installs as xaigraph.passes, so setuptools makes the editable install an import
# hook and warns (a boxed "Editable installation" notice) that a folder named like the package
# in the working directory could shadow it: here that folder is the package itself.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $@

# The fast tier's tools only, no torch, timm, Ray or browser: pytest and import-linter as in
# the dev extra (tests/unit/test_imports.py reads the import graph with grimp), and
# pytest-xdist for two workers (one test file to a worker: a module's fixtures are made once).
$(BIN)/.installed-fast: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet 'pytest>=8' 'pytest-xdist>=3.5' 'import-linter>=2.17'
	touch $@

# A wheel in dist/ (what `pip install dist/xaigraph-*.whl` installs where the repository is
# not at hand; tests/integration/test_wheel.py installs one into a bare venv and runs it).
dist: $(BIN)/.installed
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps . -w dist
	@ls dist/*.whl

# The documentation site of docs/ into site/ (offline; --strict fails on a broken link).
docs: $(BIN)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# The report's browser tests drive Debian's Chromium (Playwright never downloads a browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

$(ZOO_BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_BIN)/python -m pip install --quiet --upgrade pip
	$(ZOO_BIN)/python -m pip install --quiet -e '.[zoo]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/xaigraph demo --output $(DEMO_OUT) --force

test: $(BIN)/.installed-dev browser
	$(BIN)/python -m pytest -q

# The unit tier (hand-built graphs through both views) and the explain tier less its `slow`
# tests (Ray engine, browser, signals), without torch: under a minute on 2 cores. `make test`
# runs everything, tests/integration (torch and timm exports, many models) included.
test-fast: $(BIN)/.installed-fast
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow" tests/unit tests/explain

# 2000 mutated models through insert and inspect, fresh randomness each run (make test runs
# 200 with a fixed seed). FUZZ_CASES=N for another count.
FUZZ_CASES ?= 2000
# Also 50 explain runs stopped by SIGINT / SIGTERM at random moments (make test runs 10),
# and every case of the bad-input matrix, tests/explain/bad_cases.py (make test runs 40).
fuzz: $(BIN)/.installed-dev
	XAIGRAPH_FUZZ_CASES=$(FUZZ_CASES) XAIGRAPH_FUZZ_RANDOM=1 $(BIN)/python -m pytest -q \
	  tests/integration/test_fuzz.py
	XAIGRAPH_SIGNAL_ROUNDS=50 XAIGRAPH_FUZZ_RANDOM=1 $(BIN)/python -m pytest -q \
	  tests/explain/test_run_signals.py
	XAIGRAPH_BAD_INPUTS=all $(BIN)/python -m pytest -q tests/explain/test_bad_inputs.py

# ruff, mypy, and the import contracts of pyproject.toml (docs/runtime.md, "Import contracts").
lint: $(BIN)/.installed-dev
	$(BIN)/ruff check xaigraph passes tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports

$(PEER_BIN)/.installed:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_BIN)/python -m pip install --quiet --upgrade pip
	$(PEER_BIN)/python -m pip install --quiet openvino-xai==1.1.0
	touch $@

# Every speed target, each printed as ratios measured side by side in one run.
# BENCH_ARGS=--quick: a smoke run of the runtime-layer benches (minutes, not an hour).
bench: bench-compiler bench-runtime

bench-compiler: $(ZOO_BIN)/.installed
	$(ZOO_BIN)/python tools/bench.py
	$(ZOO_BIN)/python tools/bench_insert.py

bench-runtime: $(BIN)/.installed-dev browser $(PEER_BIN)/.installed
	$(BIN)/python tools/bench_startup.py $(BENCH_ARGS)
	$(BIN)/python tools/bench_explain.py $(BENCH_ARGS)
	$(BIN)/python tools/bench_blackbox.py --peer $(PEER_BIN)/python $(BENCH_ARGS)
	$(BIN)/python tools/bench_eval.py $(BENCH_ARGS)
	$(BIN)/python tools/bench_report.py $(BENCH_ARGS)

# Builds every models_zoo.yaml entry (cached in ~/.cache/xaigraph/zoo), runs every method,
# writes docs/zoo.md; a second run redoes only what changed. ZOO_ARGS="--only resnet18".
zoo: $(ZOO_BIN)/.installed
	$(ZOO_BIN)/python tools/zoo.py $(ZOO_ARGS)

export-demo-model: $(ZOO_BIN)/.installed
	$(ZOO_BIN)/python tools/export_demo_model.py

clean:
	rm -rf $(VENV) $(ZOO_VENV) $(PEER_VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache \
		.import_linter_cache dist site
