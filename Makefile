# edgecnn: `make demo` runs the whole trip on generated data; `make test` runs the tests.
# Both create the virtual environments they need. No model or data is downloaded at run time.
PYTHON ?= python3
VENV := .venv
BOARD_VENV := .venv-board
MEDIAPIPE_VENV := .venv-mediapipe
PY := $(VENV)/bin/python
BOARD_PY := $(BOARD_VENV)/bin/python
PYTEST_ARGS ?=
# Test processes: 2 suits the two cores CI has; `make test JOBS=auto` uses every core.
JOBS ?= 2
# tf-keras and tensorflow-model-optimization require the full `tensorflow` wheel by name; tensorflow-cpu
# (the train-cpu extra) provides the same module, so they go in without their dependencies (the extra
# lists their others): one TensorFlow in .venv. The versions are the train extra's.
TF_NO_DEPS := tf-keras==2.21.0 tensorflow-model-optimization==0.8.1
# apt-get waits up to two minutes for a dpkg lock held by another process instead of failing at once.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -y -q

.PHONY: venv board-venv mediapipe-venv demo test test-fast test-main test-board test-arm64 lint-imports chromium sshd postgresql clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train-cpu,search,dev]"
	$(PY) -m pip install -q --no-deps $(TF_NO_DEPS)
	touch $@

# The board as Raspberry Pi OS has it: tflite-runtime 2.14, numpy 1.26, no TensorFlow.
$(BOARD_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BOARD_VENV)
	$(BOARD_PY) -m pip install -q --upgrade pip
	$(BOARD_PY) -m pip install -q -e ".[device-tflite]" "pytest==9.2.0" "pytest-xdist==3.8.0" "hypothesis==6.170.15"
	touch $@

venv: $(VENV)/.installed
board-venv: $(BOARD_VENV)/.installed

# MediaPipe Tasks for tests/test_mediapipe.py, in a venv of its own: it needs opencv-contrib-python, which
# cannot share one with opencv-python-headless (both install cv2). Its dependencies come from pip's
# resolver (with mediapipe 1.2.2: numpy 2.4, opencv-contrib-python 5.1, flatbuffers 25.12). When it cannot be
# created (no registry), say why with pip's last lines; the test then skips.
mediapipe-venv:
	@if [ ! -f $(MEDIAPIPE_VENV)/.installed ]; then \
		echo "creating $(MEDIAPIPE_VENV) (mediapipe 1.2.2) for tests/test_mediapipe.py"; \
		log=$$(mktemp); \
		if { $(PYTHON) -m venv $(MEDIAPIPE_VENV) && $(MEDIAPIPE_VENV)/bin/python -m pip install -q "mediapipe==1.2.2"; } >$$log 2>&1; then \
			touch $(MEDIAPIPE_VENV)/.installed; \
		else \
			echo "$(MEDIAPIPE_VENV) could not be created; pip said:"; grep -v '^WARNING' $$log | tail -n 3 | sed 's/^/  /'; \
			echo "  tests/test_mediapipe.py will skip"; rm -rf $(MEDIAPIPE_VENV); \
		fi; \
		rm -f $$log; \
	fi

DEMO_OUT ?= demo_out
demo: venv
	$(VENV)/bin/edgecnn demo --out $(DEMO_OUT)

test: lint-imports test-main test-board

# The layer contracts of pyproject.toml's [tool.importlinter] (ARCHITECTURE.md draws them).
lint-imports: venv
	$(VENV)/bin/lint-imports --no-cache

# The edit loop: the contracts and every test not marked slow or serial, no ../shared needed (about
# three minutes on two cores). `make test` runs everything.
test-fast: venv
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "not slow and not serial" -p no:cacheprovider $(PYTEST_ARGS)

# Tests run in $(JOBS) processes (pytest-xdist, one test file per process at a time: module fixtures
# are built once); those marked `serial` (they time threads against wall-clock limits) run after, alone.
test-main: venv chromium sshd postgresql mediapipe-venv
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "not serial" --durations=20 -rs $(PYTEST_ARGS)
	$(PY) -m pytest -q -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: PYTEST_ARGS selected none of them

# $(call apt_install,PACKAGE,TEST FILE): install PACKAGE with apt-get; when that fails, say why with
# apt-get's own error lines (a held lock, no network, not root...) and which test will skip.
define apt_install
	log=$$(mktemp); \
	if ! { $(APT_GET) install $(1) || { $(APT_GET) update && $(APT_GET) install $(1); }; } >$$log 2>&1; then \
		echo "$(1) could not be installed (user $$(id -un)); apt-get said:"; \
		{ grep -E '^(E|W): ' $$log || tail -n 3 $$log; } | awk '!seen[$$0]++' | tail -n 4 | sed 's/^/  /'; \
		echo "  $(2) will skip"; \
	fi; \
	rm -f $$log
endef

# Headless Chromium renders the `evaluate --report` page in tests/test_report.py. Installed only when
# missing and apt is there (the test skips, saying why, when it cannot be installed).
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the report test (apt-get)"; \
		$(call apt_install,chromium,tests/test_report.py); \
	fi

# OpenSSH's server for tests/test_ssh_target.py (the ssh:// search target against a local sshd on
# 127.0.0.1) and tests/test_deploy.py (three local sshd "boards"). Installed only when missing and apt is
# there; the tests skip, saying why, otherwise.
sshd:
	@if [ ! -x /usr/sbin/sshd ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing openssh-server for the ssh target test (apt-get)"; \
		$(call apt_install,openssh-server,tests/test_ssh_target.py and tests/test_deploy.py); \
	fi

# PostgreSQL 15's server binaries for the search workers sharing one study (tests/test_search_postgres.py,
# tests/pg_helpers.py starts a throwaway server with them). Installed only when missing and apt is
# there; the tests skip, saying why, otherwise (and fail under EDGECNN_REQUIRE_SHARED=1).
postgresql:
	@if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql-15 for the shared-study search tests (apt-get)"; \
		$(call apt_install,postgresql-15,tests/test_search_postgres.py); \
	fi

# Device tests again under tflite-runtime and numpy 1, as on the board.
test-board: board-venv
	EDGECNN_BOARD_VENV=1 $(BOARD_PY) -m pytest -q -p no:cacheprovider -n $(JOBS) --dist loadfile -m "not serial" -rs tests/device $(PYTEST_ARGS)
	EDGECNN_BOARD_VENV=1 $(BOARD_PY) -m pytest -q -p no:cacheprovider -m serial tests/device $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The board stack on aarch64, the CPU of a Raspberry Pi: a cached Debian bookworm arm64 root under
# qemu-user, both board extras from aarch64 wheels, tests/device in each, bundles converted here
# checked frame by frame there, the README's Pi install lines (tools/arm64/test.sh says how).
test-arm64: venv board-venv
	bash tools/arm64/test.sh

clean:
	rm -rf $(VENV) $(BOARD_VENV) $(MEDIAPIPE_VENV) demo_out .pytest_cache
