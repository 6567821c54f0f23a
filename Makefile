# tritonrec: `make demo` runs the main job, `make test` the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-quick test test-fast lint typecheck clean tools-helm tools-perf-analyzer tools-prometheus tools-checkov tools-modelopt tools-chromium tools-model-analyzer

# torch is installed first and pinned (==2.13.0, CPU build on CPU machines): an unpinned torch pulls a
# multi-GB CUDA build. constraints.txt pins every other package to the versions this repo was tested with.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0 -c constraints.txt
	$(BIN)/pip install --quiet -e ".[all,dev]" -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tritonrec demo

demo-quick: $(STAMP)
	$(BIN)/tritonrec demo --quick

test: $(STAMP) tools-helm tools-perf-analyzer tools-prometheus tools-checkov tools-modelopt tools-chromium
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench export client examples
	$(BIN)/ruff format --check src tests bench export client examples
	$(BIN)/lint-imports --no-cache  # the layers of DESIGN.md ([tool.importlinter] in pyproject.toml)

typecheck: $(STAMP)
	$(BIN)/mypy

# The real helm binary for the chart tests (tests/helm); installed into .tools/helm/ (git-ignored).
tools-helm:
	helm/tools/install_helm.sh

# The real prometheus and promtool (Debian 12's package, unpacked) for the chart's rule tests; into .tools/prometheus/.
tools-prometheus:
	helm/tools/install_prometheus.sh

# checkov in its own virtualenv .tools/checkov/ (its pins conflict with constraints.txt; see the script's header).
tools-checkov:
	helm/tools/install_checkov.sh

# NVIDIA ModelOpt's ONNX PTQ in its own virtualenv .tools/modelopt/ (its pins conflict: see the script's header).
tools-modelopt:
	bash export/tools/install_modelopt.sh

# NVIDIA's perf_analyzer into .tools/perf_analyzer (it cannot live in the venv: see the script's header).
tools-perf-analyzer: $(STAMP)
	PYTHON=$(BIN)/python bash bench/tools/install_perf_analyzer.sh

# Debian's Chromium for the select report's browser test (root + apt; see the script's header).
tools-chromium:
	bash bench/tools/install_chromium.sh

# NVIDIA Triton Model Analyzer in its own virtualenv .tools/model_analyzer/ (for `tritonrec bench model-analyzer`;
# not part of `make test`: its test skips without it).
tools-model-analyzer:
	bash bench/tools/install_model_analyzer.sh

clean:
	rm -rf $(VENV) artifacts reports .pytest_cache .mypy_cache .ruff_cache
