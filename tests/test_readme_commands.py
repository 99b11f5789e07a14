"""README.md's by-hand stage commands run as written: what one command writes is where the next one's recipe reads.

The export runs for real (into a temporary folder, as the README's relative paths say); training does not, only
its recipe is read. A README edit that renames a folder on one side only fails here.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from hostile_helpers import run_main
from llamafactory_helpers import esci_records_with_cot, write_records
from taosr1_plugins.passn.config import PairOptions

REPO = Path(__file__).resolve().parents[1]
TRAIN_ENTRY_POINT = "taosr1_plugins.integrations.llamafactory.train"


def readme_commands(heading: str) -> list[list[str]]:
    """The command lines of the bash block under ``heading``, split as the shell would (comments dropped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(heading)}\n```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no bash block under {heading!r}"
    return [shlex.split(line, comments=True) for line in match.group(1).splitlines() if line.strip()]


def command(commands: list[list[str]], *prefix: str) -> list[str]:
    """The one command whose words, after any VAR=value assignments, start with ``prefix``."""
    found = [words for words in commands if split_env(words)[1][: len(prefix)] == list(prefix)]
    assert len(found) == 1, f"{prefix}: {found}"
    return found[0]


def split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """(the leading VAR=value assignments, the command they run with)."""
    count = 0
    while count < len(words) and re.fullmatch(r"[A-Za-z_]\w*=.*", words[count]):
        count += 1
    return dict(word.split("=", 1) for word in words[:count]), words[count:]


def option(words: list[str], name: str, default: str | None = None) -> str | None:
    return words[words.index(name) + 1] if name in words else default


def trainings(commands: list[list[str]]) -> list[dict]:
    """Every LLaMA-Factory training command: its recipe with the key=value arguments after it applied."""
    found = []
    for words in commands:
        recipe_at = next((i for i, w in enumerate(words) if w.endswith(".yaml")), None)
        if recipe_at is None or not ("llamafactory-cli" in words or TRAIN_ENTRY_POINT in words):
            continue
        recipe = yaml.safe_load((REPO / words[recipe_at]).read_text(encoding="utf-8"))
        recipe.update(dict(arg.split("=", 1) for arg in words[recipe_at + 1:] if "=" in arg))
        found.append(recipe)
    return found


def test_sft_block_trains_on_what_its_export_wrote(tmp_path, monkeypatch, capsys):
    commands = readme_commands("### Stage 1: SFT with LLaMA-Factory")
    export = command(commands, "taosr1", "export", "llamafactory")
    # the CoT data the README's stage 1 writes, where it says
    write_records(tmp_path / option(export, "--data"), esci_records_with_cot(limit=8))
    monkeypatch.chdir(tmp_path)  # the README's commands run from the project folder
    code, err = run_main(capsys, monkeypatch, *export[1:])
    assert code == 0, err

    recipes = trainings(commands)
    assert len(recipes) == 3  # llamafactory-cli, python -m, torchrun
    for recipe in recipes:
        info_file = tmp_path / recipe["dataset_dir"] / "dataset_info.json"
        assert info_file.is_file(), f"the recipe reads {recipe['dataset_dir']}; the export wrote {option(export, '--out-dir')}"
        info = json.loads(info_file.read_text())
        assert recipe["dataset"] in info, f"the recipe reads dataset {recipe['dataset']!r}; the export wrote {sorted(info)}"
        assert (info_file.parent / info[recipe["dataset"]]["file_name"]).is_file()
        assert info[recipe["dataset"]]["formatting"] == "taosr1_cot"


def test_dpo_and_grpo_blocks_read_what_the_stage_before_wrote():
    sft = trainings(readme_commands("### Stage 1: SFT with LLaMA-Factory"))[0]
    stage2 = readme_commands("### Stage 2: pass@N sampling and DPO")
    assert option(command(stage2, "taosr1", "passn", "sample"), "--model") == sft["output_dir"]
    pairs = command(stage2, "taosr1", "passn", "pairs")
    (dpo,) = trainings(stage2)
    assert dpo["model_name_or_path"] == sft["output_dir"]
    assert Path(dpo["dataset_dir"]) == Path(option(pairs, "--out-dir"))
    assert dpo["dataset"] == option(pairs, "--name", PairOptions().name)

    stage3 = readme_commands("### Stage 3: GRPO with difficulty-based dynamic sampling")
    prepare = command(stage3, "taosr1", "grpo", "prepare")
    launch = command(stage3, "bash", "recipes/openrlhf/grpo_taosr1.sh")
    env, _ = split_env(launch)
    # the script stops at once without these two (POLICY, GRPO_DIR: ${VAR:?...})
    assert Path(env["GRPO_DIR"]) == Path(option(prepare, "--out-dir"))
    assert env["POLICY"] == dpo["output_dir"]
    # the prompt files are sized to, and written in the prompt of, the policy the job starts from
    assert option(prepare, "--model") == env["POLICY"]
