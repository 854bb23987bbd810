# Two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WITH_SERVICES := $(BIN)/python -m config.services --

.PHONY: run test bench lint typecheck check ci clean lock install

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(WITH_SERVICES) $(BIN)/python manage.py run_product

test: $(STAMP)
	$(WITH_SERVICES) $(BIN)/python -m pytest -n 2 --dist loadfile -q $(ARGS)

bench: $(STAMP)
	$(WITH_SERVICES) $(BIN)/python -m benchmarks $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(WITH_SERVICES) $(BIN)/mypy .

check: lint typecheck
	$(WITH_SERVICES) $(BIN)/python manage.py makemigrations --check --dry-run

# Regenerate the lock file after changing dependency ranges in pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock

clean:
	rm -rf $(VENV) var staticfiles
