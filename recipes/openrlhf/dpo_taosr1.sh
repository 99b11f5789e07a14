#!/usr/bin/env bash
# TaoSR1 stage 2 with OpenRLHF 0.11: full DPO of the stage-1 CoT-SFT model on one node of 8 GPUs (80 GB).
#
#   taosr1 passn pairs --samples samples.jsonl --sft-data data/esci/train_cot.jsonl --out-dir data/dpo
#   bash recipes/openrlhf/dpo_taosr1.sh [extra --section.flag value ...]
#
# OpenRLHF 0.11 takes dotted flags (--model.*, --data.*, --train.*, --ds.*, --ckpt.*); the 0.10 underscore
# flags (--pretrain, --dataset, --beta, ...) no longer exist. Every flag below is checked against
# openrlhf/cli/train_dpo.py by tests/test_passn_openrlhf.py. Its trainers need CUDA and flash-attn.
# Override paths with environment variables; extra arguments are passed through to train_dpo.
set -euo pipefail

SFT_MODEL=${SFT_MODEL:-runs/llamafactory/sft_cot_qwen2.5-7b}   # output_dir of recipes/llamafactory/sft_cot.yaml
PAIRS=${PAIRS:-data/dpo/taosr1_dpo.openrlhf.jsonl}   # written by `taosr1 passn pairs`
OUTPUT_DIR=${OUTPUT_DIR:-runs/openrlhf/dpo_taosr1_qwen2.5-7b}
NUM_GPUS=${NUM_GPUS:-8}

deepspeed --num_gpus "${NUM_GPUS}" --module openrlhf.cli.train_dpo \
  --model.model_name_or_path "${SFT_MODEL}" \
  --ref.model_name_or_path "${SFT_MODEL}" \
  --ref.offload \
  --data.dataset "${PAIRS}" \
  --data.prompt_key prompt \
  --data.chosen_key chosen \
  --data.rejected_key rejected \
  --data.apply_chat_template \
  --data.max_len 4096 \
  --data.max_samples 1000000 \
  --train.micro_batch_size 1 \
  --train.batch_size 64 \
  --train.max_epochs 1 \
  --train.seed 42 \
  --model.beta 0.1 \
  --model.nll_loss_coef 0 \
  --adam.lr 5e-7 \
  --lr_warmup_ratio 0.1 \
  --max_norm 1.0 \
  --ds.zero_stage 3 \
  --ds.param_dtype bf16 \
  --ds.attn_implementation flash_attention_2 \
  --model.gradient_checkpointing_enable \
  --logger.logging_steps 10 \
  --eval.steps -1 \
  --ckpt.output_dir "${OUTPUT_DIR}" \
  --ckpt.save_steps -1 \
  --ckpt.save_hf \
  "$@"
