#!/usr/bin/env bash
# Stage 3 of TaoSR1 on one 8-GPU node: GRPO with OpenRLHF 0.11.2 (Ray + vLLM), our relevance reward,
# difficulty-mixed prompt files and OpenRLHF's dynamic filtering of zero-variance groups.
#
#   taosr1 grpo prepare --data RUN/cot/train.jsonl --difficulty RUN/passn/difficulty.jsonl --out-dir RUN/grpo_openrlhf \
#       --model RUN/dpo/model --run-config CONFIG.yaml
# (--model: the prompt the policy was trained with, and its tokenizer to size the prompt budget; --run-config: the
# main job's format, GRPO settings and length budgets. `taosr1 run` with grpo.framework openrlhf does both itself.)
#   .venv-openrlhf/bin/ray start --head --num-gpus 8
#   OPENRLHF_PYTHON=.venv-openrlhf/bin/python POLICY=RUN/dpo/model GRPO_DIR=RUN/grpo_openrlhf bash recipes/openrlhf/grpo_taosr1.sh
# Writes the final policy (Hugging Face format) to OUTPUT_DIR and full checkpoints to CKPT_PATH, both
# under GRPO_DIR unless set. See docs/gpu.md for the two environments and `ray start`.
#
# DRY_RUN=1 prints the command instead of submitting it (the CPU test checks it against OpenRLHF's parser).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# the wheel's copy lies inside the package (taosr1_plugins/recipes/openrlhf): the folder holding it is one up
[[ -d "$REPO/taosr1_plugins" ]] || REPO=$(cd "$REPO/.." && pwd)
# The Ray job does not run in this directory: every path it gets must be absolute.
abspath() { if [[ "$1" == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
POLICY=${POLICY:?set POLICY to the SFT/DPO checkpoint to start from}
[[ -e "$POLICY" ]] && POLICY=$(abspath "$POLICY")  # else a Hub name
GRPO_DIR=$(abspath "${GRPO_DIR:?set GRPO_DIR to the folder written by taosr1 grpo prepare}")
OUTPUT_DIR=$(abspath "${OUTPUT_DIR:-$GRPO_DIR/model}")
# Full DeepSpeed states (about 100 GB each for a 7B policy with Adam) go here, not into the Ray job's
# working directory (OpenRLHF's default ./ckpt); RESUME=1 continues from the latest one.
CKPT_PATH=$(abspath "${CKPT_PATH:-$GRPO_DIR/checkpoints}")
CKPT_MAX_NUM=${CKPT_MAX_NUM:-2}
RAY_ADDRESS=${RAY_ADDRESS:-http://127.0.0.1:8265}
# Nodes of 8 GPUs. More than one needs the checkout, the run folder and .venv-openrlhf on a filesystem every
# node mounts at the same path (docs/gpu.md, "Several nodes"); `taosr1 run` checks that before submitting.
NNODES=${NNODES:-1}
# The OpenRLHF environment (its own venv: OpenRLHF pins transformers 5.15, LLaMA-Factory needs <= 5.6);
# its `ray` submits the job and its interpreter runs train_ppo_ray.
OPENRLHF_PYTHON=${OPENRLHF_PYTHON:-python3}
[[ "$OPENRLHF_PYTHON" == */* ]] && OPENRLHF_PYTHON=$(abspath "$OPENRLHF_PYTHON")
if [[ -z "${RAY:-}" ]]; then
  RAY=ray
  [[ "$OPENRLHF_PYTHON" == */* && -x "$(dirname "$OPENRLHF_PYTHON")/ray" ]] && RAY="$(dirname "$OPENRLHF_PYTHON")/ray"
fi
# OpenRLHF imports this file inside every vLLM rollout actor and calls reward_func(queries, prompts, labels).
REWARD_FILE=${REWARD_FILE:-$REPO/taosr1_plugins/integrations/openrlhf/reward_func.py}
# Written by `taosr1 grpo prepare` for the run's format and scheme; no fallback, since a think-then-answer
# reward would score every answer-first response as malformed.
REWARD_CONFIG=$(abspath "${REWARD_CONFIG:-$GRPO_DIR/reward.yaml}")

# PROMPT_DATASET (one JSONL per difficulty bucket), PROMPT_PROBS (each bucket's share of the weight),
# MAX_NEW_TOKENS and MAX_LEN (from the GRPO settings' max_completion_length and max_prompt_length).
source "$GRPO_DIR/openrlhf_prompts.env"
if [[ ! -f "$REWARD_CONFIG" ]]; then
  echo "grpo_taosr1.sh: $REWARD_CONFIG not found; run taosr1 grpo prepare (or set REWARD_CONFIG)" >&2
  exit 2
fi
EXTRA=()
[[ "${RESUME:-0}" == 1 ]] && EXTRA+=(--ckpt.load_enable)

# Workers find taosr1_plugins through PYTHONPATH (or a pip install on the node) and the reward weights
# through TAOSR1_REWARD_CONFIG; no working_dir upload, so run folders are not copied around.
RUNTIME_ENV=$(printf '{"env_vars": {"PYTHONPATH": "%s", "TAOSR1_REWARD_CONFIG": "%s"}}' "$REPO" "$REWARD_CONFIG")

CMD=(
  "$RAY" job submit --address="$RAY_ADDRESS" --runtime-env-json="$RUNTIME_ENV"
  -- "$OPENRLHF_PYTHON" -m openrlhf.cli.train_ppo_ray
  # Placement: policy and reference share the 8 GPUs with 4 vLLM engines of 2 GPUs each; vLLM and
  # DeepSpeed sleep in turn (colocate_all), so one node holds generation and training.
  --ref.num_nodes "$NNODES" --ref.num_gpus_per_node 8
  --actor.num_nodes "$NNODES" --actor.num_gpus_per_node 8
  --vllm.num_engines $((4 * NNODES)) --vllm.tensor_parallel_size 2 --vllm.gpu_memory_utilization 0.6
  --train.colocate_all --vllm.enable_sleep --ds.enable_sleep
  --vllm.sync_backend nccl --vllm.enforce_eager
  --actor.model_name_or_path "$POLICY"
  # Reward: a Python file, not an HTTP server; shaped reward as `rewards`, 0/1 correctness as `scores`.
  --reward.remote_url "$REWARD_FILE"
  # Prompts: chat messages under `prompt`, {"gold", "scheme"} under `label` (passed to the reward as is);
  # one file per difficulty bucket, drawn with the bucket probabilities (the offline difficulty mix).
  --data.prompt_dataset "$PROMPT_DATASET" --data.prompt_probs "$PROMPT_PROBS"
  --data.input_key prompt --data.label_key label --data.apply_chat_template
  # vLLM's max_model_len is max_len: room for the prompt plus the whole completion budget
  --data.max_len "$MAX_LEN" --rollout.max_new_tokens "$MAX_NEW_TOKENS"
  # GRPO: G=8 rollouts per prompt, group-normalised advantages, no critic, KL to the reference as a
  # loss term with the k3 estimator.
  --rollout.n_samples_per_prompt 8 --rollout.temperature 1.0
  --rollout.batch_size 128 --rollout.micro_batch_size 16
  --train.batch_size 128 --train.micro_batch_size 8 --train.max_epochs 1 --train.num_episodes 1
  --algo.advantage.estimator group_norm
  --algo.kl.use_loss --algo.kl.estimator k3 --algo.kl.init_coef 1e-3
  # Online dynamic sampling: drop a prompt's group unless its mean score is strictly inside (0, 1),
  # i.e. all-right and all-wrong groups (zero advantage), and draw replacement prompts.
  --algo.dynamic_filtering_enable --algo.dynamic_filtering_range 0 1
  --actor.adam.lr 1e-6
  # DeepSpeed ZeRO-3 in bf16; packing needs flash-attn on the node.
  --ds.zero_stage 3 --ds.param_dtype bf16 --ds.packing_samples --actor.gradient_checkpointing_enable
  # Checkpoints: DeepSpeed states under CKPT_PATH/_actor, which OpenRLHF rotates (--ckpt.max_num). No --ckpt.save_hf:
  # its global_stepN_hf copies (~15 GB each for 7B) sit beside _actor/ and are never rotated; the Hugging Face
  # model is written once, at the end, to OUTPUT_DIR.
  --ckpt.output_dir "$OUTPUT_DIR" --ckpt.save_steps 50
  --ckpt.path "$CKPT_PATH" --ckpt.max_num "$CKPT_MAX_NUM"
  --logger.logging_steps 1
  ${EXTRA[@]+"${EXTRA[@]}"}
)

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  printf '%q ' "${CMD[@]}"
  echo
else
  exec "${CMD[@]}"
fi
