"""Settings of the CoT stage, declared once: the run config's `cot:` section, `taosr1 cot generate` and generate_cot."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from taosr1_plugins.core.formats import ResponseFormat


class CotSettings(BaseModel):
    """What the command line and the run config both set."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    teacher: str = Field("template", description="Registered teacher: template, openai, hf, or a plugin's.")
    k: int = Field(3, ge=0, description="Similar labelled examples in each teacher prompt (0: none).")
    retries: int = Field(2, ge=0, description="Extra tries when a trace is malformed or disagrees with the gold label.")
    # the openai teacher runs a call's requests concurrently
    batch_size: int = Field(8, ge=1, description="Records per teacher call.")
    # a student pays for every trace token in training and serving
    max_words: int | None = Field(
        None, ge=1, description="Length budget per trace: longer ones are retried, then dropped."
    )


class CotOptions(CotSettings):
    """What generate_cot runs with; ``teacher`` only names it (generate_cot is given the teacher itself)."""

    hint_on_retry: bool = Field(True, description="Give the gold label as a hint on retries.")  # as the paper allows
    fmt: ResponseFormat = ResponseFormat.THINK_ANSWER
