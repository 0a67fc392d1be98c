# Two commands do all set-up on a fresh machine with Python >= 3.11:
#   make run    a live session on the simulated headset with the demo protocol (ends by itself)
#   make test   the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-dev

.PHONY: run test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/neurofeed session --board simulated --protocol demo --participant DEMO

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/kernels.py --json benchmarks/kernels.json
	$(BIN)/python benchmarks/estimator_accuracy.py --json benchmarks/estimator_accuracy.json
	$(BIN)/python benchmarks/replay.py --minutes 10 --json benchmarks/replay.json
	PYTHONPATH=. $(BIN)/python benchmarks/reward_rate.py --json benchmarks/reward_rate.json
	$(BIN)/neurofeed bench latency --board synthetic --seconds 60 --json benchmarks/latency-synthetic.json
	QT_QPA_PLATFORM=offscreen $(BIN)/neurofeed bench latency --board synthetic --seconds 60 --display \
		--json benchmarks/latency-synthetic-display.json
	$(BIN)/neurofeed bench latency --board simulated --seconds 60 --json benchmarks/latency-simulated.json
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/display.py --minutes 10 --json benchmarks/display.json

clean:
	rm -rf $(VENV) .pytest_cache replay-out
