"""Trainer callbacks our LLaMA-Factory entry point adds to ``run_exp``."""

from __future__ import annotations

import math

from transformers import TrainerCallback


class NonFiniteLossError(RuntimeError):
    pass


class StopOnNonFiniteLoss(TrainerCallback):
    """Abort training with a clear error as soon as a logged loss or grad norm is NaN or infinite.

    Transformers' default ``logging_nan_inf_filter=True`` replaces a non-finite step loss by the mean of
    the finite ones, so a diverged run would log plausible losses (or 0.0) and save a broken checkpoint;
    this callback turns that filter off and fails instead.
    """

    WATCHED = ("loss", "grad_norm")

    def on_train_begin(self, args, state, control, **kwargs):
        args.logging_nan_inf_filter = False  # the trainer reads it every step, so this takes effect now

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in self.WATCHED:
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{key} is {value} at step {state.global_step}: training diverged or the data/model "
                    "produced non-finite values (try a lower learning_rate, bf16 instead of fp16, or check "
                    "the checkpoint); stopping before a broken checkpoint is saved"
                )
