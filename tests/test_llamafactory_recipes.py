"""The shipped LLaMA-Factory recipes only use argument names LLaMA-Factory 0.9.5 defines (a typo in a
GPU recipe would otherwise surface only on the GPU machine) and point at files that exist."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# every LLaMA-Factory recipe: the GPU ones and the CPU SFT and DPO ones
RECIPES = sorted((REPO / "recipes" / "llamafactory").glob("*.yaml"))


def llamafactory_train_fields() -> set[str]:
    from llamafactory.hparams import DataArguments, FinetuningArguments, GeneratingArguments, ModelArguments
    from llamafactory.hparams import TrainingArguments

    classes = (ModelArguments, DataArguments, TrainingArguments, FinetuningArguments, GeneratingArguments)
    return {field.name for cls in classes for field in dataclasses.fields(cls)}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_keys_are_llamafactory_arguments(recipe):
    config = yaml.safe_load(recipe.read_text())
    assert set(config) - llamafactory_train_fields() == set()
    assert config["stage"] == ("dpo" if "dpo" in recipe.name else "sft")
    if "deepspeed" in config:
        ds = json.loads((REPO / config["deepspeed"]).read_text())
        assert ds["zero_optimization"]["stage"] == 3
