# Two commands set everything up on a fresh machine with Python 3.11:
#   make demo   - create .venv, install socialcrm, run the whole workflow offline on the sample data
#   make test   - create or reuse .venv, install with the test, training and embeddings extras, run the full test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,train,embeddings]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/socialcrm demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) socialcrm-demo *.egg-info
