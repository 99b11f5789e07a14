"""Make TRL 0.24 importable with transformers 5.

TRL 0.24 stores ``_is_package_available("mergekit")`` as a bool, but transformers 5 returns a
``(available, version)`` tuple, which is always truthy: TRL then imports optional packages that are not
installed (``mergekit`` from ``trl.trainer.callbacks``) and every trainer import fails. We turn those
tuples back into bools before any TRL trainer module is imported.
"""

from __future__ import annotations


def fix_trl_availability_flags() -> None:
    import trl.import_utils as flags

    for name, value in list(vars(flags).items()):
        if name.startswith("_") and name.endswith("_available") and isinstance(value, tuple):
            setattr(flags, name, bool(value[0]))


def load_policy(model: str, *, padding_side: str | None = None):
    """(policy, tokenizer) for a TRL 0.24 trainer under transformers 5: the flags fixed, a pad token (EOS when
    the tokenizer has none), and the attribute TRL expects on the model.

    The weights are fp32 whatever dtype the checkpoint was saved in: they are the optimizer's master weights, and
    transformers 5 would otherwise load a bf16 checkpoint as bf16, where an AdamW step at the configs' learning
    rates is below the resolution of most weights (ten steps at 1e-6 changed 1.9% of them, against 99.99% in
    fp32). The trainers' `bf16: true` autocasts the compute only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fix_trl_availability_flags()
    tokenizer = AutoTokenizer.from_pretrained(model)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return add_warnings_issued(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)), tokenizer


def add_warnings_issued(model):
    """GRPOTrainer writes ``model.warnings_issued[...]``, a dict transformers 5 models no longer have."""
    if not isinstance(getattr(model, "warnings_issued", None), dict):
        model.warnings_issued = {}
    return model
