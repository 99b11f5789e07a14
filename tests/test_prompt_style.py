"""The compact student prompt, and the prompt style travelling with a trained model."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from taosr1_plugins.errors import DataError
from taosr1_plugins.core.hf_chat import render_chat
from taosr1_plugins.core.prompts import FULL, PROMPT_FILE, PromptStyle, build_messages, copy_prompt_style, prompt_style_of, write_prompt_style
from taosr1_plugins.core.schemes import get_scheme


def test_compact_prompt_is_a_fraction_of_the_full_one_and_still_names_every_level(esci_records, smollm2_dir):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    scheme = get_scheme("esci")

    def tokens(style):
        return sum(len(tokenizer(render_chat(tokenizer, build_messages(r, scheme, "answer_first", style)))["input_ids"])
                   for r in esci_records[:50])

    assert tokens(PromptStyle()) < 0.6 * tokens(FULL)
    system = build_messages(esci_records[0], scheme, "answer_first", PromptStyle())[0]["content"]
    assert all(level.token in system and level.name in system for level in scheme.levels)
    assert "<answer>" in system and "<think>" in system


def test_description_budget_cuts_long_descriptions(esci_records):
    record = max(esci_records, key=lambda r: len(r.item.description or ""))
    short = build_messages(record, get_scheme("esci"), style=PromptStyle(description_chars=50))[1]["content"]
    none = build_messages(record, get_scheme("esci"), style=PromptStyle(description_chars=0))[1]["content"]
    assert "Description:" in short and len(short.split("Description: ")[1]) <= 51
    assert "Description:" not in none


def test_style_travels_with_the_model(tmp_path):
    sft, dpo = tmp_path / "sft", tmp_path / "dpo"
    assert prompt_style_of(sft) == PromptStyle()  # a model we did not train: the default
    write_prompt_style(sft, FULL)
    copy_prompt_style(sft, dpo)
    assert prompt_style_of(dpo) == FULL
    (dpo / PROMPT_FILE).write_text(json.dumps({"instruction": "verbose"}))
    with pytest.raises(DataError, match=PROMPT_FILE):
        prompt_style_of(dpo)


def test_term_matches_spell_out_the_lexical_evidence():
    from taosr1_plugins.core.records import Item, Record

    record = Record(id="r1", query="Red Wool socks", scheme="esci", label="E",
                    item=Item(title="Wool socks, grey", description="Warm. Also sold in red."))
    plain = build_messages(record, get_scheme("esci"), style=PromptStyle())[1]["content"]
    hinted = build_messages(record, get_scheme("esci"), style=PromptStyle(term_matches=True))[1]["content"]
    assert hinted.startswith(plain)
    assert hinted[len(plain):] == "\nQuery terms in the title: 2 of 3 (wool, socks); only in the description: 1"
    assert "Query terms" not in plain


def test_term_matches_count_terms_as_the_template_teacher_does():
    """Function words are not terms and a plural finds its singular, in the prompt as in the teacher's trace."""
    from taosr1_plugins.core.prompts import term_match_line
    from taosr1_plugins.core.records import Item
    from taosr1_plugins.core.terms import compare_terms

    item = Item(title="Beach shoe, blue", description="Quick-dry sandals for kids")
    line = term_match_line("shoes for the beach kids", item)
    assert line == "Query terms in the title: 2 of 3 (shoes, beach); only in the description: 1"
    assert compare_terms("shoes for the beach kids", item.title) == (["shoes", "beach"], ["kids"])


def test_term_share_names_the_share_found_in_a_word():
    from taosr1_plugins.core.prompts import share_word, term_match_line
    from taosr1_plugins.core.records import Item, Record
    from taosr1_plugins.pipeline.config import RunConfig

    item = Item(title="Wool socks, grey", description="Warm. Also sold in red.")
    assert term_match_line("red wool socks", item, share=True).endswith("only in the description: 1; found: all")
    assert term_match_line("red wool socks", item).endswith("only in the description: 1")
    assert term_match_line("blue cotton socks", item, share=True).endswith("; found: some")
    assert [share_word(k, 4) for k in range(5)] == ["none", "some", "half", "most", "all"]
    assert share_word(0, 0) == "none"  # a query of function words only
    record = Record(id="r1", query="blue socks", scheme="esci", item=item)
    shared = build_messages(record, get_scheme("esci"), style=PromptStyle(term_matches=True, term_share=True))
    assert shared[1]["content"].endswith("; found: half")
    with pytest.raises(ValueError, match="term_matches"):
        PromptStyle(term_share=True)
    config = RunConfig.model_validate({"prompt": {"term_matches": True, "term_share": True}})
    assert config.prompt.term_share and config.prompt.model_dump()["term_share"] is True


def test_a_style_without_term_share_dumps_as_before_the_key_existed(tmp_path):
    """Runs resumed after the upgrade keep their fingerprints, and models trained before it read back alike."""
    from taosr1_plugins.core.prompts import prompt_style_of, write_prompt_style

    style = PromptStyle(term_matches=True)
    assert style.model_dump() == {"instruction": "compact", "description_chars": 200, "term_matches": True}
    write_prompt_style(tmp_path, PromptStyle(term_matches=True, term_share=True))
    assert prompt_style_of(tmp_path).term_share


def test_a_change_in_prompt_rendering_changes_the_training_fingerprints(monkeypatch):
    """Resuming a run after an upgrade that renders prompts differently retrains SFT (and the LM baselines)."""
    from taosr1_plugins.core import prompts
    from taosr1_plugins.pipeline.baselines import _settings
    from taosr1_plugins.pipeline.config import RunConfig
    from taosr1_plugins.pipeline.manifest import fingerprint
    from taosr1_plugins.pipeline.stages import STAGES

    config = RunConfig.model_validate({"format": "answer_first", "prompt": {"term_matches": True}})
    stages = {stage.name: stage for stage in STAGES}

    def stamps():
        return ([fingerprint(stages[name].settings(config), []) for name in ("export", "sft")]
                + [fingerprint(_settings(config, name), []) for name in ("zero_shot", "direct_answer")])

    before = stamps()
    monkeypatch.setattr(prompts, "term_match_line", lambda query, item, share=False: "Query terms in the title: counted anew")
    after = stamps()
    assert all(old != new for old, new in zip(before, after))
    monkeypatch.undo()
    assert stamps() == before
