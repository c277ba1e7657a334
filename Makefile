# The two commands a newcomer needs:
#   make preview   installs everything, then captures from the built-in Iterable simulator
#   make test      installs everything, then runs the whole test suite
PYTHON ?= python3.11
POETRY_VERSION := 2.5.1
POETRY := .tools/poetry/bin/poetry
VENV := .venv
export POETRY_VIRTUALENVS_IN_PROJECT := true

.PHONY: setup preview test lint acmeco acmeco-check image-check bench

$(POETRY):
	$(PYTHON) -m venv .tools/poetry
	.tools/poetry/bin/pip install --quiet poetry==$(POETRY_VERSION)

$(VENV)/.installed: $(POETRY) pyproject.toml poetry.lock
	$(POETRY) env use $(PYTHON) >/dev/null
	$(POETRY) install --no-interaction
	touch $@

setup: $(VENV)/.installed

preview: setup
	$(VENV)/bin/python -m flow_driver preview --include-disabled $(ARGS)

# Three workers on two cores: most tests wait on a connector subprocess or the simulator
# (measured: 3m04s with three, 4m10s with two). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
LINTED := source_iterable_native iterable_simulator flow_driver benchmarks tests

# The whole suite checks the lint first: CI (.ci/run) runs exactly `make test`.
test: lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy $(LINTED)

acmeco: setup
	$(VENV)/bin/python -m flow_driver acmeco --out acmeCo

acmeco-check: setup
	$(VENV)/bin/python -m flow_driver acmeco --out acmeCo --check

# Performs the Dockerfile's install steps in a fresh virtualenv and asks the result for its spec.
image-check: $(POETRY)
	rm -rf build/image && mkdir -p build/image/src
	cp -r pyproject.toml poetry.lock source_iterable_native build/image/src/
	$(PYTHON) -m venv build/image/venv
	cd build/image/src && VIRTUAL_ENV=$(CURDIR)/build/image/venv POETRY_VIRTUALENVS_IN_PROJECT=false \
	  $(CURDIR)/$(POETRY) install --only main --no-interaction
	cd build && echo '{"spec":{"connectorType":"IMAGE"}}' | image/venv/bin/python -m source_iterable_native \
	  | image/venv/bin/python -c 'import json,sys; s=json.load(sys.stdin)["spec"]; assert s["protocol"]==3032023 and "credentials" in s["configSchema"]["properties"]; print("image install answers spec: ok")'

bench: setup
	$(VENV)/bin/python -m benchmarks $(ARGS)
