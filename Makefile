# edgecnn: `make demo` runs the whole trip on generated data; `make test` runs the tests.
# Both create the virtual environments they need. No model or data is downloaded at run time.
PYTHON ?= python3
VENV := .venv
BOARD_VENV := .venv-board
PY := $(VENV)/bin/python
BOARD_PY := $(BOARD_VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: venv board-venv demo test test-main test-board chromium sshd clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train-cpu,search,dev]"
	touch $@

# The board as Raspberry Pi OS has it: tflite-runtime 2.14, numpy 1.26, no TensorFlow.
$(BOARD_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BOARD_VENV)
	$(BOARD_PY) -m pip install -q --upgrade pip
	$(BOARD_PY) -m pip install -q -e ".[device-tflite]" "pytest==9.2.0" "hypothesis==6.170.15"
	touch $@

venv: $(VENV)/.installed
board-venv: $(BOARD_VENV)/.installed

demo: venv
	$(VENV)/bin/edgecnn demo --out demo_out

test: test-main test-board

test-main: venv chromium sshd
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Headless Chromium renders the `evaluate --report` page in tests/test_report.py. Installed only when
# missing and apt is there (the test skips, saying why, when it cannot be installed).
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the report test (apt-get)"; \
		(apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) >/dev/null 2>&1 \
			|| echo "chromium could not be installed (needs root and apt): tests/test_report.py will skip"; \
	fi

# OpenSSH's server for tests/test_ssh_target.py (the ssh:// search target against a local sshd on
# 127.0.0.1). Installed only when missing and apt is there; the test skips, saying why, otherwise.
sshd:
	@if [ ! -x /usr/sbin/sshd ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing openssh-server for the ssh target test (apt-get)"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server || (apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server)) >/dev/null 2>&1 \
			|| echo "openssh-server could not be installed (needs root and apt): tests/test_ssh_target.py will skip"; \
	fi

# Device tests again under tflite-runtime and numpy 1, as on the board.
test-board: board-venv
	EDGECNN_BOARD_VENV=1 $(BOARD_PY) -m pytest -q -p no:cacheprovider tests/device $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(BOARD_VENV) demo_out .pytest_cache
