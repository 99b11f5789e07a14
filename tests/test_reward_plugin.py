"""A plugin's reward, named in the GRPO settings, is what every adapter scores with: TRL's reward_funcs,
OpenRLHF's reward file and verl's compute_score (each file loaded the way its framework loads it).
An unknown reward name is refused with the names that are registered."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from reward_plugin import HIT, MISS, NAME, RewardPlugin

from taosr1_plugins import plugins
from taosr1_plugins.builtin.schemes import ESCI
from taosr1_plugins.core.formats import render_response
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.options import OptionError
from taosr1_plugins.errors import UnknownPluginError
from taosr1_plugins.grpo.config import load_grpo_settings
from taosr1_plugins.grpo.prompts import grpo_prompt_row
from taosr1_plugins.grpo.reward import (
    REWARD_CONFIG_ENV,
    RewardSettings,
    RewardSetupError,
    build_reward,
    check_reward_setup,
)

INTEGRATIONS = Path(__file__).resolve().parents[1] / "taosr1_plugins" / "integrations"
RECORD = Record(id="r1", query="iphone 12 case", item=Item(title="Clear case for iPhone 12"), label="E", scheme="esci")
RIGHT = render_response("a case for that phone", "E", ESCI, "think_answer")
WRONG = render_response("a case for another phone", "S", ESCI, "think_answer")
# what the built-in relevance reward gives RIGHT and WRONG: the plugin's values must differ from these
RELEVANCE = (1.2, 0.2)


@pytest.fixture
def reward_plugin():
    pm = plugins.load_plugins()
    plugin = RewardPlugin()
    pm.register(plugin, name="test-reward-plugin")
    yield plugin
    pm.unregister(plugin)


@pytest.fixture
def reward_config(tmp_path, monkeypatch, reward_plugin) -> Path:
    """A run's reward.yaml naming the plugin's reward, as the GRPO stage writes it for the Ray workers."""
    config = tmp_path / "reward.yaml"
    config.write_text(f"function: {NAME}\ncorrect_weight: 2.0\nscheme: esci\n")
    monkeypatch.setenv(REWARD_CONFIG_ENV, str(config))
    return config


def load_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_name_the_reward(reward_plugin):
    assert RewardSettings().function == "relevance"
    assert NAME in plugins.registered("reward")
    reward = build_reward(RewardSettings(function=NAME, correct_weight=2.0))
    assert [reward(RIGHT, "E"), reward(WRONG, "E")] == [HIT * 2, MISS * 2]


def test_the_plugin_reads_its_own_parameter(reward_plugin):
    reward = build_reward(RewardSettings(function=NAME, correct_weight=2.0, options={"hit": 5.0}))
    assert [reward(RIGHT, "E"), reward(WRONG, "E")] == [5.0 * 2, MISS * 2]
    assert [reward(None, None), reward(RIGHT, {"gold": []})] == [MISS * 2, MISS * 2]  # content never raises
    # its options model names a bad parameter when the reward is made, never while it scores
    with pytest.raises(OptionError, match="reward function 'mentions_gold' option 'hitt': Extra inputs"):
        build_reward(RewardSettings(function=NAME, options={"hitt": 5.0}))
    with pytest.raises(OptionError, match="reward function 'mentions_gold' option 'hit': Input should be a finite"):
        build_reward(RewardSettings(function=NAME, options={"hit": "inf"}))
    with pytest.raises(OptionError, match="reward function 'relevance' option 'hit'"):  # the built-ins take none
        build_reward(RewardSettings(options={"hit": 5.0}))


def test_the_parameter_travels_to_the_workers_in_reward_yaml(tmp_path, monkeypatch, reward_plugin):
    """From the GRPO settings through the reward.yaml the OpenRLHF launch writes to a worker's reward file."""
    from taosr1_plugins.grpo.difficulty_mix import PromptChoice, Selection
    from taosr1_plugins.integrations.openrlhf.prompts import REWARD_FILE, write_openrlhf_prompts

    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(f"reward:\n  function: {NAME}\n  options: {{hit: 5.0}}\n")
    settings = load_grpo_settings(recipe)
    assert settings.reward.options == {"hit": 5.0}
    out = tmp_path / "openrlhf"
    write_openrlhf_prompts([RECORD], Selection([PromptChoice(RECORD.id, "hard", 1.0)]), ESCI, out, settings=settings)
    monkeypatch.setenv(REWARD_CONFIG_ENV, str(out / REWARD_FILE))
    assert check_reward_setup()(RIGHT, "E") == 5.0
    module = load_file(INTEGRATIONS / "verl" / "reward.py", "verl_reward_options")
    assert [module.compute_score("esci", text, "E", None) for text in (RIGHT, WRONG)] == [5.0, MISS]

    bad = tmp_path / "bad_reward.yaml"  # another file: a worker loads its reward once per file
    bad.write_text(f"function: {NAME}\noptions: {{hitt: 5.0}}\n")
    monkeypatch.setenv(REWARD_CONFIG_ENV, str(bad))
    with pytest.raises(RewardSetupError, match="option 'hitt'"):  # a worker refuses to start, naming it
        load_file(INTEGRATIONS / "verl" / "reward.py", "verl_reward_bad_options")


def test_trl_adapter_scores_with_the_plugin(tmp_path, reward_plugin):
    from taosr1_plugins.integrations.trl.reward import TrlRelevanceReward

    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(f"reward:\n  function: {NAME}\n  correct_weight: 2.0\n")
    settings = load_grpo_settings(recipe)
    assert settings.reward.function == NAME
    row = grpo_prompt_row(RECORD, ESCI)
    # as run_grpo_trl builds it, called as GRPOTrainer._calculate_rewards calls its reward_funcs
    for trl_reward in (TrlRelevanceReward(settings.reward), TrlRelevanceReward(reward=build_reward(settings.reward))):
        scores = trl_reward(
            prompts=[row["prompt"]] * 2,
            completions=[[{"role": "assistant", "content": text}] for text in (RIGHT, WRONG)],
            completion_ids=[[1], [2]],
            id=["r1"] * 2,
            label=[row["label"]] * 2,
            trainer_state=None,
        )
        assert scores == [HIT * 2, MISS * 2]
    assert TrlRelevanceReward(settings.reward, correctness_only=True)(completions=[RIGHT, WRONG], label=["E", "E"]) == [1.0, 0.0]


def test_openrlhf_reward_file_scores_with_the_plugin(reward_config):
    pytest.importorskip("torch")
    module = load_file(INTEGRATIONS / "openrlhf" / "reward_func.py", "openrlhf_reward_plugin")  # its setup check passes
    prompt = "PROMPT "
    out = module.reward_func([prompt + RIGHT + "<|im_end|>", prompt + WRONG], [prompt] * 2, [{"gold": "E", "scheme": "esci"}] * 2)
    assert out["rewards"].tolist() == [HIT * 2, MISS * 2]
    assert out["scores"].tolist() == [1.0, 0.0]  # the plugin's correctness, what dynamic filtering reads


def test_openrlhf_rollout_scores_with_the_plugin(reward_config, smollm2_dir):
    """Through OpenRLHF's own reward-file loader and single-turn executor (prompt + reply decoded with
    special tokens), as a rollout actor runs it."""
    from test_reward_adapters import openrlhf_rollout
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    right, wrong = openrlhf_rollout(tokenizer, RIGHT), openrlhf_rollout(tokenizer, WRONG)
    assert [float(right["reward"][0]), float(wrong["reward"][0])] == [HIT * 2, MISS * 2]
    assert [float(right["scores"][0]), float(wrong["scores"][0])] == [1.0, 0.0]


def test_verl_reward_file_scores_with_the_plugin(reward_config):
    module = load_file(INTEGRATIONS / "verl" / "reward.py", "verl_reward_plugin")
    assert [module.compute_score("esci", text, "E", {"scheme": "esci"}) for text in (RIGHT, WRONG)] == [HIT * 2, MISS * 2]
    batch = module.compute_score(data_sources=["esci"] * 2, solution_strs=[RIGHT, WRONG], ground_truths=["E", "E"], extra_infos=None)
    assert batch == [HIT * 2, MISS * 2]
    # verl's reward_kwargs override the file's settings, the reward function included
    assert module.compute_score("esci", RIGHT, "E", None, correct_weight=1.0) == HIT
    assert module.compute_score("esci", RIGHT, "E", None, function="relevance") == pytest.approx(2.0 + 0.2)  # the file's correct_weight


def test_verl_reward_kwargs_can_name_the_plugin(reward_plugin, monkeypatch):
    monkeypatch.delenv(REWARD_CONFIG_ENV, raising=False)
    module = load_file(INTEGRATIONS / "verl" / "reward.py", "verl_reward_kwargs")
    assert module.compute_score("esci", RIGHT, "E", None) == pytest.approx(RELEVANCE[0])
    assert module.compute_score("esci", RIGHT, "E", None, function=NAME) == HIT


def test_an_unknown_reward_is_refused(tmp_path, monkeypatch):
    with pytest.raises(UnknownPluginError, match=r"unknown reward function 'nope'; registered: correctness, relevance$"):
        build_reward(RewardSettings(function="nope"))
    config = tmp_path / "reward.yaml"
    config.write_text("function: nope\n")
    monkeypatch.setenv(REWARD_CONFIG_ENV, str(config))
    # what the OpenRLHF and verl reward files run when a worker loads them
    with pytest.raises(RewardSetupError, match=r"field 'function': unknown reward function 'nope'; registered: correctness, relevance"):
        check_reward_setup()
    with pytest.raises(RewardSetupError, match="unknown reward function 'nope'"):
        load_file(INTEGRATIONS / "verl" / "reward.py", "verl_reward_unknown")
