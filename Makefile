# make demo : create .venv, install everything (lava-nc by `neurocredit setup-lava`), run the demo:
#             rules compared on digits, then a spiking DFA net -> NIR -> Lava fixed point
# make test : same install, then the fast test suite (slow tests: make test-slow)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow benchmarks clean

$(STAMP): pyproject.toml setup.py Makefile neurocredit/_setup_lava.py neurocredit/commands/setup_lava.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/neurocredit setup-lava --quiet
	$(BIN)/pip check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py
	$(BIN)/python examples/compile_to_lava.py --samples 3

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
