"""Settings of stage 2 (pass@N sampling, DPO pairs), declared once: the run config's `passn:` and `dpo:`
sections, `taosr1 passn sample | pairs` and the stage functions. Pydantic only, no backend imports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.core.formats import ResponseFormat


class PassnSettings(BaseModel):
    """What the command line and the run config both set about *what* is sampled."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: str = Field("hf", description="Registered generation backend: hf, vllm, openai, or a plugin's.")
    n: int = Field(8, ge=1, description="Samples per prompt.")
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)


class PassnRunSettings(PassnSettings):
    """Plus how it is run, which does not change the samples' distribution (so is not in the shard metadata)."""

    batch_size: int = Field(8, ge=1, description="Prompts per forward pass, for backends with a batch size (hf).")


class PassnShardSettings(PassnSettings):
    """Everything that decides *what* is sampled; recorded in the shard metadata and checked on resume."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seed: int = Field(0, description="Shard k is sampled with seed + k.")
    shard_size: int = Field(
        32, ge=1, description="Prompts per atomically committed shard."  # the unit of atomic commit and of seeding
    )
    fmt: ResponseFormat = ResponseFormat.THINK_ANSWER


class PairSettings(BaseModel):
    """DPO pair building, set by `taosr1 passn pairs` and the run config's `dpo:` section."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_pairs_per_prompt: int = Field(2, ge=1)
    skip_all_correct: bool = Field(True, description="Skip prompts whose samples all name the gold label.")
    gold_cot_when_all_wrong: bool = Field(True, description="Use the gold CoT as chosen when no sample is correct.")


class PairOptions(PairSettings):
    name: str = Field("taosr1_dpo", description="Dataset name (LLaMA-Factory entry, file stems).")
