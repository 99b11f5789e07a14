"""Careless configs, model paths and CumPT files: a clear one-line message, status 2 through the real
`main()`, checked before the first stage starts (no run directory made), and no empty `.partial` left."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from hostile_helpers import run_main, snapshot
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.model_paths import check_model_path

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


@pytest.fixture
def taosr1(capsys, monkeypatch):
    return lambda *args: run_main(capsys, monkeypatch, *args)


def write_config(folder: Path, text: str) -> Path:
    config = folder / "configs" / "run.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(RECIPES, folder / "recipes", dirs_exist_ok=True)  # the default recipe paths resolve
    config.write_text(f"run_dir: {folder / 'run'}\n" + text)
    (folder / "broken.yaml").write_bytes(b"a: [1, 2\n\xff")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    return config


def alias_bomb(levels: int = 6, width: int = 10) -> str:
    """A flow mapping of ~200 bytes per level whose last value stands for width**levels leaves."""
    parts = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    parts += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "{" + ", ".join(parts) + "}"


BAD_CONFIGS = {
    "missing data.input": ("data: {source: esci, input: nowhere.csv}\n", "field 'data.input': no such file"),
    "data.input a folder": ("data: {source: esci, input: ..}\n", "field 'data.input': is not a regular file"),
    "unknown data.source": ("data: {source: nope}\n", "field 'data.source': unknown importer 'nope'"),
    "unknown data.scheme": ("data: {scheme: nope}\n", "field 'data.scheme': unknown label scheme"),
    "unknown cot.teacher": ("cot: {teacher: nope}\n", "field 'cot.teacher': unknown teacher 'nope'"),
    "missing sft recipe": ("sft: {recipe: gone.yaml}\n", "field 'sft.recipe': no such file"),
    "missing dpo recipe": ("dpo: {recipe: ../recipes/llamafactory/gone.yaml}\n", "field 'dpo.recipe': no such file"),
    "missing grpo recipe": ("grpo: {recipe: gone.yaml}\n", "field 'grpo.recipe': no such file"),
    "unknown passn backend": ("passn: {backend: nope}\n", "field 'passn.backend': unknown generation backend"),
    "unknown deploy backend": ("deploy: {backend: nope}\n", "field 'deploy.backend': unknown deployment adapter"),
    "missing base model": ("model: {base: ./no/model}\n", "field 'model.base':"),
    "uncached Hub id as base model": (  # offline (conftest): settled by the cache, not by the Hub's retries
        "model: {base: nobody-org/no-such-model-xyz}\n", "field 'model.base': nobody-org/no-such-model-xyz: no such model folder"
    ),
    "all-zero ratios": ("split: {ratios: [0, 0, 0]}\n", "field 'split.ratios':"),
    "negative ratio": ("split: {ratios: [-1, 1, 1]}\n", "field 'split.ratios':"),
    "NaN ratio": ("split: {ratios: [.nan, 1, 1]}\n", "field 'split.ratios':"),
    "infinite ratio": ("split: {ratios: [.inf, 1, 1]}\n", "field 'split.ratios':"),
    "not a mapping": ("- a\n- b\n", "mapping"),
    "broken recipe YAML": ("sft: {recipe: ../broken.yaml}\n", "field 'sft.recipe': cannot read"),
    "recipe not a mapping": ("dpo: {recipe: ../list.yaml}\n", "field 'dpo.recipe':"),
    "bad GRPO override": ("grpo: {overrides: {no_such_setting: 1}}\n", "field 'grpo.overrides.no_such_setting': Extra inputs"),
    "unknown GRPO reward": (
        "grpo: {overrides: {reward: {function: nope}}}\n",
        "field 'grpo.recipe': setting 'reward.function': unknown reward function 'nope'; registered: correctness, relevance",
    ),
    "unknown GRPO sampler": (
        "grpo: {overrides: {sampler: nope}}\n", "field 'grpo.recipe': setting 'sampler': unknown prompt sampler 'nope'"
    ),
    # every plugin's options by the model that reads them, every numeric setting bounded (issue 32)
    "unknown cot option": ("cot: {options: {nosuch_option: 1}}\n", "field 'cot.options.nosuch_option': teacher 'template' option 'nosuch_option': Extra inputs"),
    "unknown deploy option": ("deploy: {options: {nosuch_option: 1}}\n", "field 'deploy.options.nosuch_option': deployment adapter 'hf' option"),
    "negative eval.limit": ("eval: {limit: -5}\n", "field 'eval.limit': Input should be greater than or equal to 1"),
    "zero eval.batch_size": ("eval: {batch_size: 0}\n", "field 'eval.batch_size': Input should be greater than or equal to 1"),
    "negative eval.max_new_tokens": ("eval: {max_new_tokens: -1}\n", "field 'eval.max_new_tokens': Input should be greater"),
    "negative data.limit": ("data: {limit: -1}\n", "field 'data.limit': Input should be greater than or equal to 1"),
    "negative passn.limit": ("passn: {limit: -1}\n", "field 'passn.limit': Input should be greater than or equal to 1"),
    "negative seed": ("seed: -1\n", "field 'seed': Input should be greater than or equal to 0"),
    "negative split.max_pairs": ("split: {max_pairs: {train: -1}}\n", "field 'split.max_pairs.train': Input should be greater"),
    "infinite passn.temperature": ("passn: {temperature: .inf}\n", "field 'passn.temperature': Input should be a finite number"),
    "NaN GRPO learning rate": ("grpo: {overrides: {learning_rate: .nan}}\n", "field 'grpo.overrides.learning_rate': Input should be a finite number"),
    "circular anchor": ("sft: {overrides: &ov {learning_rate: 1.0e-4, self: *ov}}\n", "line 2: a circular anchor"),
    "alias bomb in cot.options": (f"cot: {{options: {alias_bomb()}}}\n", "expands to over 100,000 values"),
    "alias bomb in sft.overrides": (f"sft: {{overrides: {alias_bomb()}}}\n", "expands to over 100,000 values"),
    "guided replay on OpenRLHF": (
        "grpo: {framework: openrlhf, overrides: {guided_replay: true}}\n", "field 'grpo.overrides.guided_replay': guided_replay is a TRL-backend option"
    ),
}


# `baselines` reads the data, split and SFT sections only, not the CoT teacher (the direct-answer row trains with the SFT recipe)
LATER_STAGES = ("cot", "passn", "dpo", "grpo", "deploy")


def _read_by_baselines(case: str) -> bool:
    return not any(f"field '{stage}." in BAD_CONFIGS[case][1] for stage in LATER_STAGES)


CASES = [("run", case) for case in sorted(BAD_CONFIGS)] + [
    ("baselines", case) for case in sorted(BAD_CONFIGS) if _read_by_baselines(case)
]


@pytest.mark.parametrize(("command", "case"), CASES)
def test_config_errors_stop_before_the_first_stage(tmp_path, taosr1, case, command):
    text, message = BAD_CONFIGS[case]
    if case == "not a mapping":
        config = write_config(tmp_path, "")
        config.write_text(text)
    else:
        config = write_config(tmp_path, text)
    before = snapshot(tmp_path)
    code, err = taosr1(command, config)
    assert code == 2, err
    assert "Traceback" not in err and message in err and str(config) in err, err
    assert not (tmp_path / "run").exists() and snapshot(tmp_path) == before


def test_non_utf8_yaml_is_a_config_error(tmp_path, taosr1):
    config = write_config(tmp_path, "")
    config.write_bytes(b"seed: 1\ncot: {teacher: \xff\xfe}\n")
    code, err = taosr1("run", config)
    assert code == 2 and str(config) in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("seed.sub=1", "field 'seed':"),
        ("eval.sub=1", "field 'eval.sub':"),
        ("run_dir.x=1", "field 'run_dir': is not a section"),
        ("eval.limit=[1, 2", "not valid YAML"),
        ("eval.limit={a: 1", "not valid YAML"),
        ("noequals", "KEY=VALUE"),
        (".limit=1", "KEY=VALUE"),
        ("split.ratios=[0, 0, 0]", "field 'split.ratios'"),
        ("eval.limit=-5", "field 'eval.limit'"),
        (f"cot.options={alias_bomb()}", "expands to over 100,000 values"),
        ("cot.options=&a [1, *a]", "a circular anchor"),
    ],
)
def test_bad_set_is_a_clear_error(tmp_path, taosr1, setting, message):
    config = write_config(tmp_path, "")
    code, err = taosr1("run", config, "--set", setting)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


# --- model paths ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("models") / "good"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def broken_models(good: Path, root: Path) -> dict[str, tuple[Path, str]]:
    def variant(name: str, change) -> Path:
        path = root / name
        shutil.copytree(good, path)
        change(path)
        return path

    root.mkdir()
    file = root / "a-file"
    file.write_text("not a model")
    weights = good / "model.safetensors"
    return {
        "missing": (root / "absent", "no such model directory"),
        "a file": (file, "is a file"),
        "no config": (variant("no-config", lambda p: (p / "config.json").unlink()), "no config.json"),
        "broken config": (
            variant("bad-config", lambda p: (p / "config.json").write_text("{broken")),
            "config.json: not valid JSON",
        ),
        "no weights": (variant("no-weights", lambda p: (p / "model.safetensors").unlink()), "no weights"),
        "truncated weights": (
            variant(
                "cut",
                lambda p: (p / "model.safetensors").write_bytes(weights.read_bytes()[: weights.stat().st_size // 2]),
            ),
            "truncated",
        ),
        "garbage weights": (
            variant("garbage", lambda p: (p / "model.safetensors").write_bytes(b"\x00" * 3)),
            "not a readable safetensors file",
        ),
        "no tokenizer": (
            variant("no-tok", lambda p: (p / "tokenizer.json").unlink()),
            "no tokenizer files",
        ),
    }


def test_the_good_copy_passes(model_copy):
    check_model_path(model_copy)


def one_record(folder: Path) -> Path:
    data = folder / "data.jsonl"
    data.write_text(json.dumps({"id": "a", "query": "q", "item": {"title": "t"}, "label": "E", "scheme": "esci"}) + "\n")
    return data


@pytest.mark.parametrize(
    "case",
    ["missing", "a file", "no config", "broken config", "no weights", "truncated weights", "garbage weights", "no tokenizer"],
)
def test_score_with_a_path_that_is_not_a_model(tmp_path, taosr1, model_copy, case):
    model, message = broken_models(model_copy, tmp_path / "models")[case]
    data = one_record(tmp_path)
    before = snapshot(tmp_path)
    code, err = taosr1("score", "--model", model, "--data", data, "--out", tmp_path / "out" / "s.jsonl")
    assert code == 2 and message in err and "Traceback" not in err and "sentencepiece" not in err, err
    assert snapshot(tmp_path) == before  # no scores, no empty .partial, no folder


@pytest.mark.parametrize("case", ["missing", "broken config", "truncated weights"])
def test_grpo_train_with_a_path_that_is_not_a_model(tmp_path, taosr1, model_copy, case):
    model, message = broken_models(model_copy, tmp_path / "models")[case]
    data = one_record(tmp_path)
    before = snapshot(tmp_path)
    code, err = taosr1("grpo", "train", "--model", model, "--data", data, "--out-dir", tmp_path / "out")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert snapshot(tmp_path) == before  # checked before any prompt file or folder is written


def test_loading_a_broken_model_leaves_no_partial(tmp_path, model_copy):
    """Below the CLI, the scoring job's own load fails with the same message and leaves nothing."""
    from taosr1_plugins.core.records import Item, Record
    from taosr1_plugins.deploy.scoring import ScoreSettings, score_records

    model, message = broken_models(model_copy, tmp_path / "models")["no weights"]
    records = [Record(id="a", query="q", item=Item(title="t"), label="E", scheme="esci")]
    with pytest.raises(DataError, match=message):
        score_records(model, records, tmp_path / "s.jsonl", ScoreSettings(progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_an_unknown_hub_id_offline_is_named(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="not in the Hugging Face cache"):
        check_model_path("nobody-org/no-such-model-xyz")


# --- CumPT thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", ["NaN", "2", "-1", "Infinity"])
def test_eval_refuses_cumpt_thresholds_outside_0_1(tmp_path, taosr1, threshold):
    cumpt = tmp_path / "cumpt.json"
    cumpt.write_text(
        '{"scheme": "esci", "levels": ["E", "S", "C", "I"], '
        f'"thresholds": {{"E": {threshold}, "S": 0.5, "C": 0.5}}}}'
    )
    scores = tmp_path / "scores.jsonl"
    scores.write_text("")
    before = snapshot(tmp_path)
    code, err = taosr1("eval", "--scores", scores, "--report", tmp_path / "r.html", "--cumpt", cumpt)
    assert code == 2 and str(cumpt) in err and "threshold of level 'E'" in err, err
    assert "Traceback" not in err and snapshot(tmp_path) == before


def test_the_quickstart_config_passes_the_preflight_check():
    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.preflight import check_run_config

    check_run_config(load_config(REPO / "configs" / "quickstart.yaml"))


def test_preflight_checks_only_the_stages_the_run_reaches(tmp_path):
    from taosr1_plugins.errors import DataError
    from taosr1_plugins.pipeline.config import load_config
    from taosr1_plugins.pipeline.preflight import check_run_config

    config_path = tmp_path / "config.yaml"
    config_path.write_text(f"sft: {{recipe: {REPO / 'recipes/llamafactory/sft_cot_tiny.yaml'}}}\ngrpo: {{recipe: missing.yaml}}\n")
    config = load_config(config_path)
    check_run_config(config, config_path, stages=("import", "split", "cot", "export", "sft"))  # `--until sft`
    with pytest.raises(DataError, match=r"(dpo|grpo)\.recipe.: no such file"):
        check_run_config(config, config_path)


# a temperature (or bias) that passes "> 0" but makes the calibrated distribution NaN: every pair fell back to the
# lowest tier in `eval`, `score` wrote "margin": NaN, and `serve` answered 500 while /healthz said ok (issue 32)
POISON_CALIBRATIONS = {
    "temperature 5e-324": ({"method": "temperature", "temperature": 5e-324}, "calibration.temperature"),
    "temperature 1e-310": ({"method": "temperature", "temperature": 1e-310}, "calibration.temperature"),
    "temperature 1e300": ({"method": "temperature", "temperature": 1e300}, "calibration.temperature"),
    "bias 1e308": ({"method": "temperature_bias", "temperature": 1.0, "biases": {"E": 1e308, "S": 0, "C": 0, "I": 0}},
                   "calibration.biases.E"),
}


def poisoned_cumpt(folder: Path, case: str) -> Path:
    cumpt = folder / "cumpt.json"
    cumpt.write_text(json.dumps({"scheme": "esci", "levels": ["E", "S", "C", "I"],
                                 "thresholds": {"E": 0.5, "S": 0.6, "C": 0.7}, "calibration": POISON_CALIBRATIONS[case][0]}))
    return cumpt


@pytest.mark.parametrize("command", ["eval", "score", "serve"])
@pytest.mark.parametrize("case", sorted(POISON_CALIBRATIONS))
def test_a_calibration_that_cannot_give_finite_probabilities_is_refused(tmp_path, taosr1, tiny_model_dir, command, case):
    cumpt = poisoned_cumpt(tmp_path, case)
    data = one_record(tmp_path)
    args = {
        "eval": ["--scores", data, "--report", tmp_path / "r.html"],  # the scores file is read after the cumpt.json
        "score": ["--model", tiny_model_dir, "--data", data, "--out", tmp_path / "s.jsonl", "--device", "cpu"],
        # bounded: a regression serves for 20 s, then fails the status check
        "serve": ["--model", tiny_model_dir, "--device", "cpu", "--host", "127.0.0.1", "--port", "0", "--exit-after", "20"],
    }[command]
    before = snapshot(tmp_path)
    code, err = taosr1(command, *args, "--cumpt", cumpt)
    assert code == 2 and str(cumpt) in err and f"field '{POISON_CALIBRATIONS[case][1]}" in err, err
    assert "Traceback" not in err and snapshot(tmp_path) == before


def test_the_temperatures_a_fit_can_give_load_and_stay_finite(tmp_path):
    from taosr1_plugins.deploy.calibration import load_cumpt
    from taosr1_plugins.deploy.temperature import BETA_BOUNDS

    for beta in BETA_BOUNDS:  # the fit's own extremes
        cumpt = tmp_path / "cumpt.json"
        cumpt.write_text(json.dumps({"scheme": "esci", "levels": ["E", "S", "C", "I"], "thresholds": {"E": 0.5, "S": 0.6, "C": 0.7},
                                     "calibration": {"method": "temperature", "temperature": 1 / beta}}))
        partition = load_cumpt(cumpt).to_cumpt()
        for probs in ([1, 0, 0, 0], [0, 0, 0, 1], [0.25] * 4, [1e-9, 1e-9, 1e-9, 1 - 3e-9]):
            assert all(math.isfinite(p) for p in partition.calibrated(probs)) and math.isfinite(partition.margin(probs))
