"""A real DPO run on CPU: `llamafactory-cli train recipes/llamafactory/dpo_tiny.yaml` on pairs from the pair builder."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamafactory_helpers import ESCI_SAMPLE, assert_trained, esci_records_with_cot
from passn_helpers import crafted_row, no_answer, other_label, right, wrong

from taosr1_plugins.integrations import dpo_pair_writers
from taosr1_plugins.passn.pairs import build_pairs
from taosr1_plugins.core.prompts import system_prompt
from taosr1_plugins.core.schemes import get_scheme

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "llamafactory" / "dpo_tiny.yaml"
VENV_BIN = Path(sys.executable).parent
MAX_STEPS = 3  # the recipe's max_steps and save_steps

pytestmark = pytest.mark.skipif(not ESCI_SAMPLE.is_file(), reason="shared ESCI sample not beside the checkout")


@pytest.fixture(scope="module", autouse=True)
def patched_llamafactory():
    from taosr1_plugins.integrations.llamafactory.patching import (
        PatchState,
        patch_installed,
    )

    states = patch_installed(check=True)
    if any(state is not PatchState.APPLIED for state in states.values()):
        pytest.fail(f"installed llamafactory is not patched ({states}); run `taosr1 patch llamafactory`")


def test_llamafactory_cli_dpo_on_cpu(tmp_path, tiny_model_dir):
    records = esci_records_with_cot(limit=8)
    rows = [crafted_row(r, [right(r), wrong(r, other_label(r)), no_answer(r)]) for r in records]
    summary = build_pairs(rows, records, tmp_path / "lf", writers=dpo_pair_writers())
    assert summary["pairs"] == 16
    out = tmp_path / "run"
    result = subprocess.run(
        [str(VENV_BIN / "llamafactory-cli"), "train", str(RECIPE), f"model_name_or_path={tiny_model_dir}",
         f"dataset_dir={tmp_path / 'lf'}", f"output_dir={out}"],
        cwd=REPO,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
             "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets")},
        capture_output=True, text=True, timeout=300,
    )
    assert_trained(result, out, MAX_STEPS)
    # LLaMA-Factory printed a pairwise example built from our rows: our system prompt, both responses
    assert "chosen_input_ids" in result.stdout and "rejected_input_ids" in result.stdout
    assert system_prompt(get_scheme("esci")).split(" Answer with")[0] in result.stdout
    state = json.loads((out / "trainer_state.json").read_text())
    dpo_logs = [entry for entry in state["log_history"] if "rewards/accuracies" in entry]
    assert dpo_logs and all(math.isfinite(entry["rewards/margins"]) for entry in dpo_logs)
