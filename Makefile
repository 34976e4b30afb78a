# Two entry points (see README): `make demo` grades the demo class, `make test` runs the tests.
# Both create the virtual environment first if it is missing or out of date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup browser demo test test-gpu lint assignments clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,student]'
	touch $@

# tests/test_browser.py drives Debian's chromium with playwright; nothing downloads a browser of its own
# (never `playwright install`). sudo only where we are not root.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -q && $$sudo apt-get install -y --no-install-recommends chromium; }

demo: setup
	$(BIN)/grade demo --out demo

test: setup browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# on a machine with a CUDA device: the cuda checks, the cuda variants, the demo on cpu,cuda
test-gpu:
	bash .ci/gpu

lint: setup
	$(BIN)/ruff check autograder tests solutions bench
	$(BIN)/mypy

assignments: setup
	$(BIN)/grade build

clean:
	rm -rf demo results .pytest_cache .mypy_cache .ruff_cache
