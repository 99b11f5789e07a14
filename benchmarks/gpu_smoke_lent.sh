#!/usr/bin/env bash
# The smoke test for a lent GPU machine (CUDA torch, transformers, peft, accelerate; no TRL, datasets, vLLM, package
# index or network; the working tree plus at most 64 MiB carried). Here, before lending:
#
#   make gpu-wheelhouse        # .cache/gpu_wheelhouse (~9 MiB) and .cache/taosr1/models/tiny-smollm2 (16 MiB)
#
# carry those two folders with the working tree, and there, from the checkout root:
#
#   bash benchmarks/gpu_smoke_lent.sh
#
# It installs the wheelhouse (--no-index) into a folder of its own, put first on PYTHONPATH so it shadows nothing
# installed, and runs benchmarks/gpu_smoke_lent.py: label probabilities and CumPT tiers from one forward pass, the
# scoring server on loopback, SFT steps through transformers' Trainer with fp32 master weights, GPU memory given
# back between parts; bf16 on CUDA, float32 on a CPU (where it checks the script only, and says so).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
WHEELHOUSE=${WHEELHOUSE:-.cache/gpu_wheelhouse}
SITE=${SITE:-/tmp/taosr1-smoke-site}
export TAOSR1_CACHE_DIR=${TAOSR1_CACHE_DIR:-$PWD/.cache/taosr1}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
date -u +"%Y-%m-%dT%H:%M:%SZ"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import sys, torch, transformers; print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
if [[ ! -f "$WHEELHOUSE/requirements.txt" ]]; then
  echo "gpu_smoke_lent: no $WHEELHOUSE/requirements.txt; run \`make gpu-wheelhouse\` where PyPI is reachable and carry it" >&2
  exit 2
fi
# only the wheelhouse: a missing wheel (another Python than 3.11/3.12) fails here, by name
"$PY" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" --target "$SITE" --upgrade -r "$WHEELHOUSE/requirements.txt"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/gpu_smoke_lent.py "$@"
