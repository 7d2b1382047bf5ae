# vizcli developer commands. `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench lint mutate clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e '.[dev]'
	$(BIN)/python -m compileall -q vizcli
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/pytest -q

test-fast: $(STAMP)  # everything but the slow end-to-end and model-zoo tests (about 1 minute)
	$(BIN)/pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m compileall -q vizcli  # start-up timings assume cached bytecode
	$(BIN)/python bench/run.py

mutate: $(STAMP)  # mutation score per core package (minutes each): make mutate PKG=stats [ARGS="--sample 150"]
	$(BIN)/python scripts/mutate.py $(PKG) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo_out runs .pytest_cache .ruff_cache .mutate
