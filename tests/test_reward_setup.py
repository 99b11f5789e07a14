"""A reward file that cannot score in its process fails when the framework loads it, loudly; only the
response and label content may score zero. Each load runs in a fresh interpreter, through OpenRLHF's own
loader (``SingleTurnAgentExecutor``, as a vLLM rollout actor does) or verl's ``load_extern_object`` shape."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OPENRLHF_REWARD_FILE = REPO / "taosr1_plugins" / "integrations" / "openrlhf" / "reward_func.py"
VERL_REWARD_FILE = REPO / "taosr1_plugins" / "integrations" / "verl" / "reward.py"

# A Ray worker whose environment lacks pluggy: the import system finds no such module.
WITHOUT_PLUGGY = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoPluggy(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pluggy" or name.startswith("pluggy."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoPluggy())
    """
)

OPENRLHF_LOAD = "from openrlhf.utils.agent import SingleTurnAgentExecutor\nSingleTurnAgentExecutor(remote_rm_url={path!r})\nprint('LOADED')\n"
# verl/utils/import_utils.py load_extern_object: spec_from_file_location + exec_module, then getattr
VERL_LOAD = (
    "import importlib.util\nspec = importlib.util.spec_from_file_location('custom_module', {path!r})\n"
    "module = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(module)\n"
    "getattr(module, 'compute_score')\nprint('LOADED')\n"
)


def _load(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO)}
    full_env.pop("TAOSR1_REWARD_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=300)


def test_pluggy_blocker_really_hides_pluggy():
    result = _load(WITHOUT_PLUGGY + "import pluggy\n")
    assert result.returncode != 0 and "No module named 'pluggy'" in result.stderr


def test_openrlhf_reward_file_without_pluggy_fails_at_load():
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    result = _load(WITHOUT_PLUGGY + OPENRLHF_LOAD.format(path=str(OPENRLHF_REWARD_FILE)))
    assert result.returncode != 0 and "LOADED" not in result.stdout
    assert "RewardSetupError" in result.stderr and "pluggy" in result.stderr and "Ray worker" in result.stderr


def test_verl_reward_file_without_pluggy_fails_at_load():
    result = _load(WITHOUT_PLUGGY + VERL_LOAD.format(path=str(VERL_REWARD_FILE)))
    assert result.returncode != 0 and "LOADED" not in result.stdout
    assert "RewardSetupError" in result.stderr and "pluggy" in result.stderr


def test_reward_file_loads_in_a_complete_environment():
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    result = _load(OPENRLHF_LOAD.format(path=str(OPENRLHF_REWARD_FILE)))
    assert result.returncode == 0 and "LOADED" in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "No such file"),
        ("format_weight: lots\n", "format_weight"),
        ("scheme: no_such_scheme\n", "no_such_scheme"),
    ],
)
def test_unloadable_reward_config_fails_at_load(tmp_path, content, words):
    config = tmp_path / "reward.yaml"
    if content is not None:
        config.write_text(content)
    result = _load(VERL_LOAD.format(path=str(VERL_REWARD_FILE)), {"TAOSR1_REWARD_CONFIG": str(config)})
    assert result.returncode != 0 and "LOADED" not in result.stdout
    assert str(config) in result.stderr and words in result.stderr


def test_content_still_scores_zero_without_raising():
    from taosr1_plugins.grpo.reward import RelevanceReward

    reward = RelevanceReward()
    response = "<think>x</think>\n<answer>E</answer>"
    assert reward.score(response, {"gold": "E", "scheme": "no_such_scheme"}).reward == 0.0
    assert reward.score(response, {"gold": "E", "scheme": "esci"}).correct == 1.0
    for label in ({"gold": "Z", "scheme": "esci"}, None, 3, ["E"], {"scheme": 5}):
        result = reward.score(response, label)
        assert result.correct == 0.0 and result.reward <= reward.settings.format_weight
