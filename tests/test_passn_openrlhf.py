"""OpenRLHF 0.11 DPO: its own loader and RewardDataset read our pairwise file, and the shipped script
uses only flags that openrlhf/cli/train_dpo.py defines, with the dataset keys and file `passn pairs`
writes. (OpenRLHF's trainers need CUDA and flash-attn; its datasets import on CPU.)"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
from llamafactory_helpers import ESCI_SAMPLE, esci_records_with_cot
from passn_helpers import crafted_row, no_answer, other_label, right, wrong

from taosr1_plugins.integrations.openrlhf.pairwise import (
    CHOSEN_KEY,
    PROMPT_KEY,
    REJECTED_KEY,
)
from taosr1_plugins.integrations import dpo_pair_writers
from taosr1_plugins.passn.pairs import PairOptions, build_pairs

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "openrlhf" / "dpo_taosr1.sh"

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="pip install --no-deps openrlhf==0.11.2"),
    pytest.mark.skipif(not ESCI_SAMPLE.is_file(), reason="shared ESCI sample not beside the checkout"),
]


def train_dpo_source() -> str:
    package = Path(importlib.util.find_spec("openrlhf").origin).parent  # no import of the CUDA-only modules
    return (package / "cli" / "train_dpo.py").read_text()


def train_dpo_flags() -> dict[str, str | None]:
    """Every ``parser.add_argument("--flag", ...)`` in train_dpo.py -> its action (None for a value flag)."""
    flags = {}
    for node in ast.walk(ast.parse(train_dpo_source())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            name = node.args[0].value
            action = next((kw.value.value for kw in node.keywords if kw.arg == "action"), None)
            flags[name] = action
    return flags


def script_arguments() -> list[str]:
    """The arguments after `--module openrlhf.cli.train_dpo` in the script (continuations joined)."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    command = next(line for line in text.splitlines() if "openrlhf.cli.train_dpo" in line)
    words = shlex.split(command)
    return words[words.index("openrlhf.cli.train_dpo") + 1 :]


def test_script_flags_exist_in_train_dpo():
    flags = train_dpo_flags()
    assert "--model.model_name_or_path" in flags and "--pretrain" not in flags  # the 0.11 dotted parser
    args = script_arguments()
    used = [a for a in args if a.startswith("--")]
    assert used, args
    assert set(used) - set(flags) == set()
    # store_true flags take no value; value flags are followed by one
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            takes_value = flags[arg] is None
            nxt = args[i + 1] if i + 1 < len(args) else "--"
            assert takes_value == (not nxt.startswith("--") and nxt != "$@"), arg


def test_script_dataset_keys_and_file_match_the_pair_builder():
    args = script_arguments()
    value = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert value["--data.prompt_key"] == PROMPT_KEY
    assert value["--data.chosen_key"] == CHOSEN_KEY
    assert value["--data.rejected_key"] == REJECTED_KEY
    assert "--data.apply_chat_template" in args
    default_pairs = re.search(r"PAIRS=\$\{PAIRS:-([^}]+)\}", SCRIPT.read_text()).group(1)
    assert Path(default_pairs).name == f"{PairOptions().name}.openrlhf.jsonl"
    assert "deepspeed" in SCRIPT.read_text() and "--module openrlhf.cli.train_dpo" in SCRIPT.read_text()


def test_openrlhf_reward_dataset_reads_our_pairs(tmp_path, tiny_model_dir, monkeypatch):
    from openrlhf.datasets.reward_dataset import RewardDataset
    from openrlhf.datasets.utils import blending_datasets
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    records = esci_records_with_cot(limit=30)
    rows = [
        crafted_row(records[1], [right(records[1]), wrong(records[1], other_label(records[1])), no_answer(records[1])]),
        crafted_row(records[13], [wrong(records[13], other_label(records[13]))]),  # all wrong: gold CoT chosen
        crafted_row(records[25], [right(records[25]), no_answer(records[25])]),
    ]
    summary = build_pairs(rows, records, tmp_path / "pairs", writers=dpo_pair_writers())
    path = summary["openrlhf"]["file"]

    # only the parts of a DeepSpeed strategy the loaders read: the parsed data flags of the script, rank 0
    data_args = SimpleNamespace(prompt_key=PROMPT_KEY, chosen_key=CHOSEN_KEY, rejected_key=REJECTED_KEY,
                                apply_chat_template=True, tokenizer_chat_template=None)
    strategy = SimpleNamespace(args=SimpleNamespace(data=data_args, use_ms=False), print=lambda *a, **k: None,
                               is_rank_0=lambda: True)
    data = blending_datasets(path, None, strategy)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    dataset = RewardDataset(data, tokenizer, 4096, strategy, is_dpo=True, num_processors=1)
    assert len(dataset) == summary["pairs"] == 4

    written = [json.loads(line) for line in Path(path).read_text().splitlines()]
    batch = dataset.collate_fn([dataset[i] for i in range(len(dataset))])
    chosen_ids, chosen_mask, rejected_ids, rejected_mask, prompt_lengths = batch
    for i, row in enumerate(written):
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        chosen = tokenizer.decode(chosen_ids[i][chosen_mask[i].bool()])
        rejected = tokenizer.decode(rejected_ids[i][rejected_mask[i].bool()])
        assert chosen == prompt + row["chosen"][0]["content"] + tokenizer.eos_token
        assert rejected == prompt + row["rejected"][0]["content"] + tokenizer.eos_token
        assert prompt_lengths[i] == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
