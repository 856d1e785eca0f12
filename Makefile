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
# pytest workers (pytest-xdist); one file, or one notebook, stays on one worker. Each computes on its share of
# the cores: more PyTorch threads than cores spin-wait (nbval of the goldens, six of them then, on 2 cores: 357 s with 2 workers
# of 2 threads, 56 s with 2 workers of 1 thread).
TEST_JOBS ?= 2
THREADS := $(shell n=$$(( $$(nproc 2>/dev/null || echo 2) / $(TEST_JOBS) )); echo $$(( n > 0 ? n : 1 )))
# nbval over the references in tests/goldens/: it compares only what cells marked `# NBVAL_CHECK_OUTPUT` print.
NBVAL := --nbval-lax --nbval-current-env
# What nbstripout removes besides outputs and execution counts: metadata that differs between machines and tools.
STRIP_KEYS := metadata.papermill metadata.widgets metadata.vscode metadata.language_info.version \
	cell.metadata.papermill cell.metadata.execution cell.metadata.editable cell.metadata.slideshow \
	cell.metadata.jp-MarkdownHeadingCollapsed cell.metadata.colab cell.metadata.outputId cell.metadata.id

.DEFAULT_GOAL := help
.PHONY: help setup test test-e2e golden strip test-gpu run-all test-run-all test-browser bench-run-all bench lint format download lab lock clean
.PHONY: generate bench-generate
.PHONY: hub-setup hub test-replica gpu-check
.PHONY: test-ui
.PHONY: test-colab colab-refresh
.PHONY: train-tiny eval-tiny

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv with the pinned packages (again only when a pin changes)

$(STAMP): $(PIN_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements-dev.txt -c constraints.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# make test leaves out the tests marked e2e (real processes, kernels and servers: a minute or two more); make test-e2e
# runs only those; CI runs both.
PYTEST := $(TEST_ENV) OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -n $(TEST_JOBS) --dist loadfile

test: setup hub-setup ## Set up if needed, then the unit tests and nbval of the notebooks (tiny profile, CPU, offline)
	$(PYTEST) $(NBVAL) --nbval-cell-timeout=300 -m "not e2e"

test-e2e: setup hub-setup ## The end-to-end tests: accelerate launch, run-all, kernels, the user's path through the local Hub
	$(PYTEST) -m e2e --durations=10

golden: setup ## Regenerate the nbval references in tests/goldens/ (tiny profile) after changing a notebook
	$(TEST_ENV) $(PY) -m tools.goldens

strip: setup ## Strip outputs, execution counts and machine-specific metadata from notebooks/*.ipynb
	$(VENV)/bin/nbstripout --extra-keys "$(STRIP_KEYS)" notebooks/*.ipynb

test-gpu: setup ## The same nbval check on a CUDA GPU with the real models (SD_PROFILE=gpu); fails without CUDA
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
	'make test-gpu needs a CUDA GPU and torch.cuda.is_available() is False here; on a CPU, run make test')"
	SD_PROFILE=gpu HF_HUB_OFFLINE=0 MPLBACKEND=Agg $(PY) -m pytest $(NBVAL) --nbval-cell-timeout=1800 tests/goldens

# run-all: PROFILE=auto|gpu|mps|cpu|tiny, NOTEBOOKS="03 05", PARAMS="seed=3 02.prompt='a red fox'", RESUME=latest.
# JOBS is passed on only when given (make run-all JOBS=1); run-all's own default is 2 on a CPU, one per GPU on CUDA.
PROFILE ?= auto
RUN_ALL_ARGS = --profile $(PROFILE) --params "$(PARAMS)" $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) \
	$(if $(RESUME),--resume $(RESUME)) $(if $(filter command line environment,$(origin JOBS)),--jobs $(JOBS))

run-all: setup ## Run every notebook into runs/<UTC time>-<profile>/ with a report and a gallery (docs/tools.md)
	$(PY) -m tools.run_all $(RUN_ALL_ARGS)

test-run-all: setup ## The run-all tests, plus a real tiny run-all of every notebook
	$(TEST_ENV) SD_TEST_RUN_ALL=1 $(PY) -m pytest tests/tools/test_run_all.py

test-browser: setup ## Headless Chromium (installed if missing) opens a fresh tiny run's gallery: every image loads
	$(TEST_ENV) $(PY) -m tools.browser_check

# Playwright drives Debian's chromium (installed if missing); screenshots and summary.json in build/ui-check/<time>/.
test-ui: setup ## JupyterLab in a real browser: the playground clicked through, every lesson Run All and saved
	$(PY) -m tools.ui_check

bench-run-all: setup ## run-all's overhead: its wall time against the same notebooks run as plain scripts
	$(TEST_ENV) $(PY) -m tools.run_all.bench

# generate: PROMPTS=file (.txt, .csv, .jsonl), SEEDS=0-7 (default 0), OUT=folder (default generated/<file name>),
# PROFILE as above, PROCESSES=N processes through accelerate (one per GPU; on a CPU they share its cores),
# GENERATE_ARGS="--batch-size 4 ..." for any other option (python -m tools.generate --help).
SEEDS ?= 0
GENERATE := $(if $(PROCESSES),$(VENV)/bin/accelerate launch --multi_gpu --num_processes $(PROCESSES) \
	--num_machines 1 --mixed_precision no --dynamo_backend no -m,$(PY) -m) tools.generate

generate: setup ## Every prompt of PROMPTS=file at SEEDS=0-7 into OUT=folder, with a manifest and a gallery (docs/tools.md)
	@test -n "$(PROMPTS)" || { echo 'make generate needs PROMPTS=<a .txt, .csv or .jsonl file>, e.g. make generate PROMPTS=prompts.txt SEEDS=0-7'; exit 2; }
	$(GENERATE) --prompts "$(PROMPTS)" --seeds "$(SEEDS)" --profile $(PROFILE) $(if $(OUT),--out "$(OUT)") $(GENERATE_ARGS)

bench-generate: setup ## Images per second of make generate with 1 and 2 processes, against a plain loop (tiny profile)
	$(TEST_ENV) $(PY) -m tools.generate.bench

# bench: PROFILE=auto|tiny|replica|gpu|cpu|mps, QUICK=1 for the small subset, BENCH_ARGS for the rest
# (python -m tools.bench --help), e.g. BENCH_ARGS="--groups batch fast-path --reps 5".
bench: setup ## Speed, memory and TFLOP/s of one pipeline under many settings, into runs/bench-<UTC time>-<profile>/
	$(PY) -m tools.bench --profile $(PROFILE) $(if $(filter 1 yes true,$(QUICK)),--quick) $(BENCH_ARGS)

# Colab: NOTEBOOKS="02 05" picks notebooks; the first run builds the simulated Colab into ~/.cache/sd-tutorial/colab.
test-colab: setup ## Every notebook as a learner's first Colab session, in a simulated Colab (Python 3.13, Colab's packages)
	$(PY) -m tools.colab_sim $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

colab-refresh: setup ## Update Colab's published versions (tools/colab_sim/colab-runtime.txt) from googlecolab/backend-info
	$(PY) -m tools.colab_sim refresh $(if $(SOURCE),--source $(SOURCE))

lint: setup ## ruff on the Python files and the notebooks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## Fix what ruff can fix
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

download: setup ## Fetch the real models once into the HF cache (MODELS="id ..."; CHECK=1: verify the cache offline)
	$(PY) -m tools.download $(if $(CHECK),--check) $(MODELS)

# The local Hub and the SD1.5 replica (docs/tools.md: the local Hub and the replica). olah has its own virtual environment, because
# its dependencies conflict with the tutorial's pins.
HUB_VENV  := .venv-hub
HUB_STAMP := $(HUB_VENV)/.installed-$(shell cat requirements-hub.txt 2>/dev/null | sha256sum | cut -c1-12)

hub-setup: $(HUB_STAMP) ## Create .venv-hub with the pinned olah, the local Hub's server

$(HUB_STAMP): requirements-hub.txt
	@test -x $(HUB_VENV)/bin/python || $(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/python -m pip --disable-pip-version-check install -q -r requirements-hub.txt
	@rm -f $(HUB_VENV)/.installed-*
	@touch $@

hub: setup hub-setup ## Serve the stand-in models as a local Hub on 127.0.0.1 and print the HF_ENDPOINT to set (HUB_ARGS=--help)
	$(PY) -m tools.hub $(HUB_ARGS)

test-replica: setup ## nbval of every golden on the SD1.5 replica (real size, random weights), one notebook at a time
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m tools.replica_nbval $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

gpu-check: setup ## On a CUDA GPU: replica build, nbval, run-all and timings at 512 px; report in docs/
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m tools.gpu_check

# The tiny models in helpers/standins/models/ (what the tiny profile loads) are trained by this recipe on the world of
# captioned pictures (helpers/standins/world.py). Stages are kept in build/train-tiny/: an interrupted run resumes.
train-tiny: setup ## Remake the shipped tiny models from nothing (about 80 minutes on 2 CPU cores: docs/reports/cpu-timings.md); FRESH=1 forgets earlier stages
	$(PY) -m tools.train_tiny $(if $(filter 1 yes true,$(FRESH)),--fresh)

eval-tiny: setup ## Measure what the shipped tiny models learned: eval.json and a grid in docs/reports/tiny-model/
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m tools.eval_tiny

lab: setup ## Open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

lock: setup ## Rewrite constraints.txt from what is installed (after changing a pin)
	{ sed -n '1,2p' constraints.txt; $(PIP) freeze --exclude-editable | grep -v -e '^-e' -e '^torch=='; } > constraints.new && mv constraints.new constraints.txt

clean: ## Remove caches and the virtual environment (never runs/ or saved images)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
