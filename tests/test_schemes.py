"""Label schemes: built-ins, YAML schemes with located errors, raw-label mapping, tokenizer checks."""

import pytest

from taosr1_plugins.builtin.schemes import ESCI, HOME_DEPOT
from taosr1_plugins.errors import DataError
from taosr1_plugins.core.schemes import SchemeError, get_scheme, load_scheme_file


def test_builtin_schemes_are_registered():
    for name in ("taosr1", "esci", "crowdflower", "home_depot", "kuaisearch"):
        scheme = get_scheme(name)
        assert scheme.name == name
        assert [scheme.rank(k) for k in scheme.keys] == list(range(len(scheme.keys) - 1, -1, -1))


def test_home_depot_buckets_follow_the_dataset_readme():
    # README: <=1.67 -> 1, 2-2.33 -> 2, >=2.5 -> 3
    for raw, key in [("1", "1"), ("1.33", "1"), ("1.67", "1"), ("2", "2"), ("2.33", "2"), ("2.5", "3"), ("3", "3")]:
        assert HOME_DEPOT.to_key(raw) == key
    with pytest.raises(ValueError):
        HOME_DEPOT.to_key("4.5")


def test_esci_raw_words_map_to_keys():
    assert ESCI.to_key("E") == "E"
    assert ESCI.to_key("Substitute") == "S"
    with pytest.raises(ValueError, match="not a label of scheme 'esci'"):
        ESCI.to_key("maybe")


def test_yaml_scheme(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_text(
        "name: binary\nlevels:\n"
        "  - {key: '1', name: Relevant, definition: fits}\n"
        "  - {key: '0', name: Irrelevant, definition: does not fit}\n"
    )
    scheme = get_scheme(str(path))
    assert scheme.keys == ["1", "0"] and scheme.label_from_answer("relevant") == "1"


def test_yaml_scheme_errors_name_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nlevels:\n  - {key: '1', name: A}\n  - {key: '0', name: B, definition: x}\n")
    with pytest.raises(DataError) as err:
        load_scheme_file(path)
    assert str(path) in str(err.value) and "levels.0.definition" in str(err.value)

    path.write_text("name: dup\nlevels:\n  - {key: a, name: A, definition: x}\n  - {key: a, name: B, definition: y}\n")
    with pytest.raises(DataError, match="unique"):
        load_scheme_file(path)


def test_verbalizers_must_be_single_tokens(smollm2_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    for name in ("taosr1", "esci", "crowdflower", "home_depot", "kuaisearch"):
        get_scheme(name).check_tokenizer(tokenizer)
    path = tmp_path / "words.yaml"
    path.write_text(
        "name: words\nlevels:\n"
        "  - {key: a, name: A, definition: x, verbalizer: 'Exactly relevant'}\n"
        "  - {key: b, name: B, definition: y, verbalizer: 'b'}\n"
    )
    with pytest.raises(SchemeError, match="single tokens"):
        get_scheme(str(path)).check_tokenizer(tokenizer)
