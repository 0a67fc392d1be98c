# Two commands do all set-up on a fresh machine with Python >= 3.11:
#   make run    a live session on the simulated headset with the demo protocol (ends by itself: the end
#               screen closes after 15 s)
#   make test   the test suite (about 13 min on 2 cores; the one-hour soak is `make soak`)
# Also: make soak (the one-hour soak, simulated faster than real time), make test-load (the suite
# while a CPU-bound process occupies one core: what a busy clinic laptop or CI runner looks like),
# make lint (ruff, and lint-imports: the rooms' layers), make lock (refresh constraints.txt), make stimuli (redraw protocols/stimuli/).
# The install takes every package at the version pinned in constraints.txt (what the suite last passed
# with), so `make test` and CI test the same set on any day.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-dev

PYTEST  = QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

CONSTRAINTS = constraints.txt

.PHONY: sysdeps run test soak test-load install bench clean lint lock lock-upgrade stimuli

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/neurofeed session --board simulated --protocol demo --participant DEMO --close-after 15

# Real X windows for tests/test_console_x11.py (Xvfb, xdotool, Qt's xcb libraries: the packages of
# neurofeed.ui.qt_platform.XCB_PACKAGES), installed from Debian's packages when missing and run as root;
# otherwise it says what to install (the test then fails with the same words).
XCB_DEBS = xvfb xdotool libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
	libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
sysdeps:
	@if command -v Xvfb >/dev/null && command -v xdotool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(XCB_DEBS); \
	else echo "make sysdeps: install Xvfb and xdotool (apt-get install $(XCB_DEBS)) for the real-X test" >&2; fi

test: $(STAMP) sysdeps
	$(PYTEST) -m "not soak" --durations=10

soak: $(STAMP)
	$(PYTEST) -m soak

# One core kept busy by a Python busy loop for the whole run (killed on exit, also on Ctrl-C).
test-load: $(STAMP)
	@$(BIN)/python -c "while True: pass" & busy=$$!; trap 'kill $$busy 2>/dev/null' EXIT INT TERM; \
	start=$$(date +%s); $(PYTEST) -m "not soak" --durations=10; rc=$$?; \
	echo "make test-load: $$(( $$(date +%s) - start )) s with one core busy (pid $$busy), exit $$rc"; exit $$rc

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
	$(BIN)/python benchmarks/display.py --x11 --minutes 3 --json benchmarks/display-x11.json  # needs xvfb
	PYTHONPATH=. $(BIN)/python benchmarks/artifacts.py --json benchmarks/artifacts.json
	PYTHONPATH=. $(BIN)/python benchmarks/dyad.py --json benchmarks/dyad.json
	PYTHONPATH=. $(BIN)/python benchmarks/latency_frontier.py --json benchmarks/latency_frontier.json
	PYTHONPATH=. $(BIN)/python benchmarks/bar_smoothing.py --json benchmarks/bar_smoothing.json
# electrode -> feedback on the emulated Cyton (benchmarks/RESULTS.md, "Electrode to feedback")
	$(BIN)/neurofeed bench latency --signal eeg --seconds 90 --json benchmarks/latency-e2e-eeg-default.json
	$(BIN)/neurofeed bench latency --signal eeg --seconds 90 --delay-s 0.05 --json benchmarks/latency-e2e-eeg-50ms.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --json benchmarks/latency-e2e-default.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --estimator wcfir --delay-s 0 --json benchmarks/latency-e2e-wcfir-0ms.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --estimator wcfir --delay-s 0.02 --json benchmarks/latency-e2e-wcfir-20ms.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --estimator wcfir --delay-s 0.05 --json benchmarks/latency-e2e-wcfir-50ms.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --estimator iir --json benchmarks/latency-e2e-iir.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --estimator window --json benchmarks/latency-e2e-window.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --burst-ms 16 --json benchmarks/latency-e2e-ftdi-16ms.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --burst-ms 48 --json benchmarks/latency-e2e-muse-12.json
	QT_QPA_PLATFORM=offscreen $(BIN)/neurofeed bench latency --signal scripted --seconds 60 --display --json benchmarks/latency-e2e-display.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --bar-smoothing-s 0.1 --json benchmarks/latency-e2e-bar-0.1.json
	$(BIN)/neurofeed bench latency --signal scripted --seconds 60 --bar-smoothing-s 0 --json benchmarks/latency-e2e-bar-0.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# constraints.txt: every package of core + [cluster] + [dev] pinned, for every platform (uv's universal
# resolution), keeping the versions already pinned there unless pyproject.toml no longer admits them;
# lock-upgrade moves everything to the newest admitted versions (then run make test).
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	--custom-compile-command "make lock" -o $(CONSTRAINTS)
lock: $(STAMP)
	$(UV_COMPILE)

lock-upgrade: $(STAMP)
	$(UV_COMPILE) --upgrade

stimuli: $(STAMP)
	$(BIN)/python protocols/stimuli/make_stimuli.py

clean:
	rm -rf $(VENV) .pytest_cache replay-out
