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
	$(BIN)/neurofeed bench latency --board synthetic --seconds 60 --json benchmarks/latency-synthetic.json
	QT_QPA_PLATFORM=offscreen $(BIN)/neurofeed bench latency --board synthetic --seconds 60 --display \
		--json benchmarks/latency-synthetic-display.json
	$(BIN)/neurofeed bench latency --board simulated --seconds 60 --json benchmarks/latency-simulated.json
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/display.py --minutes 10 --json benchmarks/display.json
# --- latency helper: electrode -> feedback on the emulated Cyton (benchmarks/RESULTS.md, "Electrode to feedback") ---
	$(BIN)/neurofeed bench latency --seconds 60 --json benchmarks/latency-e2e-default.json
	$(BIN)/neurofeed bench latency --seconds 60 --estimator wcfir --delay-s 0 --json benchmarks/latency-e2e-wcfir-0ms.json
	$(BIN)/neurofeed bench latency --seconds 60 --estimator wcfir --delay-s 0.02 --json benchmarks/latency-e2e-wcfir-20ms.json
	$(BIN)/neurofeed bench latency --seconds 60 --estimator wcfir --delay-s 0.05 --json benchmarks/latency-e2e-wcfir-50ms.json
	$(BIN)/neurofeed bench latency --seconds 60 --estimator iir --json benchmarks/latency-e2e-iir.json
	$(BIN)/neurofeed bench latency --seconds 60 --estimator window --json benchmarks/latency-e2e-window.json
	$(BIN)/neurofeed bench latency --seconds 60 --burst-ms 16 --json benchmarks/latency-e2e-ftdi-16ms.json
	$(BIN)/neurofeed bench latency --seconds 60 --burst-ms 48 --json benchmarks/latency-e2e-muse-12.json
	QT_QPA_PLATFORM=offscreen $(BIN)/neurofeed bench latency --seconds 60 --display --json benchmarks/latency-e2e-display.json
# --- end latency helper ---

clean:
	rm -rf $(VENV) .pytest_cache replay-out
