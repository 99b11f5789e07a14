"""Each framework adapter called the way its framework calls it (OpenRLHF through its own loader)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.formats import render_response
from taosr1_plugins.grpo.prompts import grpo_prompt_row
from taosr1_plugins.core.records import Item, Record

REPO = Path(__file__).resolve().parents[1]
OPENRLHF_REWARD_FILE = REPO / "taosr1_plugins" / "integrations" / "openrlhf" / "reward_func.py"

RECORD = Record(id="r1", query="iphone 12 case", item=Item(title="Clear case for iPhone 12"), label="E", scheme="esci")
RIGHT = render_response("The item is a case for the phone the query names.", "E", ESCI, "think_answer")
WRONG = render_response("A case, but for another phone.", "S", ESCI, "think_answer")


class OneReplyEngine:
    """Stands in for the vLLM engine only: returns a fixed reply's tokens, as vLLM's RequestOutput does."""

    def __init__(self, token_ids):
        self.token_ids = token_ids

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = SimpleNamespace(token_ids=self.token_ids, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def openrlhf_rollout(tokenizer, reply: str):
    """One OpenRLHF 0.11.2 single-turn rollout: its dataset preprocessing, its reward-file loader and
    its executor, which decodes prompt + reply with special tokens and calls our reward_func."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from openrlhf.datasets.prompts_dataset import preprocess_data
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    row = grpo_prompt_row(RECORD, ESCI)
    prompt, label = preprocess_data(row, input_key="prompt", label_key="label", apply_chat_template=tokenizer.apply_chat_template)
    executor = SingleTurnAgentExecutor(remote_rm_url=[str(OPENRLHF_REWARD_FILE)])
    assert executor.reward_func is not None  # loaded from our file by OpenRLHF's own importlib code
    reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    params = SimpleNamespace(max_tokens=64, logprobs=None)
    return asyncio.run(executor.execute(prompt, label, params, 4096, tokenizer, OneReplyEngine(reply_ids)))


def test_openrlhf_reward_file_through_openrlhf(tokenizer):
    right = openrlhf_rollout(tokenizer, RIGHT)
    assert right["label"] == {"gold": "E", "scheme": "esci"}  # the dict label passed through untouched
    assert float(right["reward"][0]) == pytest.approx(1.2)  # shaped reward
    assert float(right["scores"][0]) == 1.0  # plain correctness, what dynamic filtering reads
    assert float(right["extra_logs"]["taosr1/format_ok"]) == 1.0
    wrong = openrlhf_rollout(tokenizer, WRONG)
    assert float(wrong["reward"][0]) == pytest.approx(0.2) and float(wrong["scores"][0]) == 0.0
    garbage = openrlhf_rollout(tokenizer, "<answer><think>}{")
    assert float(garbage["reward"][0]) == 0.0 and float(garbage["scores"][0]) == 0.0


def test_openrlhf_reward_func_contract():
    pytest.importorskip("torch")
    from taosr1_plugins.integrations.openrlhf.reward_func import reward_func

    out = reward_func(["PROMPT" + RIGHT + "<|im_end|>"], ["PROMPT"], [{"gold": "E", "scheme": "esci"}])
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].shape == out["scores"].shape == (1,)
    empty = reward_func([], [], [])
    assert empty["rewards"].numel() == 0 and empty["extra_logs"] == {}


def test_trl_reward_with_both_completion_shapes():
    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward

    reward = TrlRelevanceReward()
    row = grpo_prompt_row(RECORD, ESCI)
    # GRPOTrainer._calculate_rewards: prompts=, completions=, completion_ids=, every column, trainer_state=
    conversational = reward(
        prompts=[row["prompt"]] * 3,
        completions=[[{"role": "assistant", "content": text}] for text in (RIGHT, WRONG, "junk")],
        completion_ids=[[1], [2], [3]],
        id=["r1"] * 3,
        label=[row["label"]] * 3,
        trainer_state=None,
    )
    assert conversational == pytest.approx([1.2, 0.2, 0.0])
    plain = reward(prompts=["p", "p"], completions=[RIGHT, WRONG], label=["E", "E"], scheme=["esci", "esci"])
    assert plain == pytest.approx([1.2, 0.2])
    assert TrlRelevanceReward(correctness_only=True)(completions=[RIGHT, WRONG], label=["E", "E"]) == [1.0, 0.0]


def test_verl_compute_score_keywords():
    from taosr1_plugins.integrations.verl.reward import compute_score, compute_score_with_details

    # verl's reward managers pass keywords
    score = compute_score(data_source="esci", solution_str=RIGHT, ground_truth="E", extra_info={"scheme": "esci"})
    assert score == pytest.approx(1.2)
    assert compute_score(data_source="esci", solution_str=WRONG, ground_truth={"gold": "E", "scheme": "esci"}, extra_info=None) == pytest.approx(0.2)
    details = compute_score_with_details("esci", RIGHT, "E", {"index": 0})
    assert details == {"score": pytest.approx(1.2), "acc": 1.0, "format_ok": 1.0}
    assert math.isfinite(compute_score(None, None, None, None))
