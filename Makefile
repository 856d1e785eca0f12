# Thin wrapper: each target hands off to one tool. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# The stamp's name changes whenever a pin changes, so `make setup` reinstalls only then.
PIN_FILES := requirements.txt requirements-dev.txt constraints.txt pyproject.toml
STAMP  := $(VENV)/.installed-$(shell cat $(PIN_FILES) 2>/dev/null | sha256sum | cut -c1-12)
# Tests never touch the Hub and never need a GPU: they run the tiny profile.
TEST_ENV := SD_PROFILE=tiny HF_HUB_OFFLINE=1 MPLBACKEND=Agg

.DEFAULT_GOAL := help
.PHONY: help setup test lint format download lab lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv with the pinned packages (again only when a pin changes)

$(STAMP): $(PIN_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements-dev.txt -c constraints.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

test: setup ## Set up if needed, then run every test (tiny profile, CPU, offline)
	$(TEST_ENV) $(PY) -m pytest

lint: setup ## ruff on the Python files and the notebooks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## Fix what ruff can fix
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

download: setup ## Fetch the real models once into the Hugging Face cache (MODELS="id ..." to choose)
	$(PY) -m helpers.download $(MODELS)

lab: setup ## Open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

lock: setup ## Rewrite constraints.txt from what is installed (after changing a pin)
	{ sed -n '1,2p' constraints.txt; $(PIP) freeze --exclude-editable | grep -v -e '^-e' -e '^torch=='; } > constraints.new && mv constraints.new constraints.txt

clean: ## Remove caches and the virtual environment (never runs/ or saved images)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
