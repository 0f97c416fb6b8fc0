# Each target works on a fresh machine by itself: it makes .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
APT_PKGS := graphviz chromium

.PHONY: test fuzz demo bench lint lab system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# one stamp per extra set, redone when pyproject.toml changes
$(VENV)/.stamp-%: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[$*]'
	@touch $@

# Debian packages: graphviz's `dot` for rendering graphs, chromium for the browser test
system-deps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

test: system-deps $(VENV)/.stamp-test
	$(PY) -m pytest -q -n 2

# the differential fuzzer beyond the budget `make test` runs: N programs from SEED, checked
# against PyTorch; prints "agreed / run" and the disagreements grouped by op, with repros
N    ?= 3000
SEED ?= 0
fuzz: $(VENV)/.stamp-test
	PYTHONPATH=tests $(PY) -m fuzz -n $(N) --seed $(SEED)

demo: system-deps $(VENV)/.stamp-nn
	$(PY) demo.py

bench: $(VENV)/.stamp-bench
	$(PY) -m bench

lint: $(VENV)/.stamp-lint
	$(PY) -m ruff check autograd nn tests bench docs demo.py

# JupyterLab on the guided tour (notebooks/); its graphs need Graphviz's `dot`.
# As root (a container, a fresh VM) Jupyter refuses to start without --allow-root.
USER_ID  ?= $(shell id -u)
LAB_ARGS := $(if $(filter 0,$(USER_ID)),--allow-root)
lab: $(VENV)/.stamp-lab
	@command -v dot >/dev/null 2>&1 || echo "note: Graphviz's dot is missing, so graphs \
will not render: sudo apt-get install graphviz (or make system-deps)"
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
