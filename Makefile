# Two commands on a fresh machine with Python 3.10+:  make course   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
PROFILE ?= auto

.PHONY: help install course test lint format test-fast test-other-precision lab render runs summary bench clean-notebooks

help:
	@echo "make course  - install, run every notebook headlessly (profile $(PROFILE)), executed copies + HTML in build/"
	@echo "make test    - install, check the style (make lint), run the unit tests and every notebook top to bottom as on a\n               fresh clone (no data: synthetic)"
	@echo "make format  - apply the house style (ruff format and ruff check --fix)"
	@echo "make test-other-precision - the training tests in the precision this CPU does not pick (float32 or bfloat16)"
	@echo "make lab     - open JupyterLab on the notebooks"
	@echo "make render  - re-execute the committed notebooks in the laptop profile (real data, from the stored runs; trains nothing);"
	@echo "               each replaces its notebook only if it ran cleanly on the data the profile means"
	@echo "make summary - rewrite README.md's results section from the committed results/"
	@echo "make bench   - speed and memory against the plain way"
	@echo "make runs    - list the runs the tables lack with their cost here; HOURS=3 trains what fits (resumable), FILL=1 the rest"

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .  # utils importable from the notebooks' folder, no sys.path edits
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (utkface course)" > /dev/null
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

course: $(STAMP)
	$(BIN)/python -m utils.notebooks course --profile $(PROFILE)

TEST_WORKERS ?= 2  # pytest-xdist processes: a 2-core machine runs the suite in about half the time; 0 runs it in one
test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)  # the house style: ruff's formatter and linter (settings in pyproject.toml); `make format` fixes most
	$(BIN)/ruff format --check utils tests
	$(BIN)/ruff check utils tests

format: $(STAMP)
	$(BIN)/ruff format utils tests
	$(BIN)/ruff check --fix utils tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not notebooks"

# The precision this CPU does not pick under 'auto' (float32 on a bf16 CPU, emulated bfloat16 without), on the tests
# that train or compute in the dtype policy: the next machine may take the other path.
OTHER_PRECISION := $(shell grep -qsE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo float32 || echo mixed_bfloat16)
test-other-precision: $(STAMP)
	UTKFACE_PRECISION=$(OTHER_PRECISION) $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not notebooks" tests/test_store_training.py \
		tests/test_resume.py tests/test_rules.py tests/test_layers.py tests/test_keras_in_view.py tests/test_jax_path.py

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)  # root in containers needs it

render: $(STAMP)
	$(BIN)/python -m utils.notebooks render --profile laptop
	$(BIN)/python -m utils.summary --write

summary: $(STAMP)
	$(BIN)/python -m utils.summary --write

HOURS ?= 0
runs: $(STAMP)  # HOURS=3: train what fits in 3 hours; COMMIT=1: commit each run as it lands; FILL=1: see --fill (STRETCHES=2: a run two more stretches finish)
	$(BIN)/python -m utils.queue --hours $(HOURS) $(if $(filter 1,$(COMMIT)),--commit) $(if $(filter 1,$(FILL)),--fill $(if $(STRETCHES),--stretches $(STRETCHES)))

bench: $(STAMP)
	$(BIN)/python -m utils.bench

clean-notebooks: $(STAMP)  # strip execution noise and papermill cells, rewrite the Colab cell from GITHUB_REPO
	$(BIN)/python -m utils.notebooks clean
