"""The response formats and the one parser that never raises."""

from hypothesis import given, settings
from hypothesis import strategies as st

from taosr1_plugins.builtin.schemes import BUILTIN_SCHEMES, ESCI, TAOSR1
from taosr1_plugins.core.formats import ResponseFormat, parse_response, render_response


def test_round_trip_every_scheme_level_and_format():
    for scheme in BUILTIN_SCHEMES:
        for level in scheme.levels:
            for fmt in ResponseFormat:
                text = render_response("The query asks for X; the item is X.", level.key, scheme, fmt)
                parsed = parse_response(text, scheme, fmt)
                assert parsed == (level.key, "The query asks for X; the item is X.", True)


def test_order_must_match_the_requested_format():
    answer_first = render_response("why", "E", ESCI, ResponseFormat.ANSWER_FIRST)
    assert parse_response(answer_first, ESCI, ResponseFormat.ANSWER_FIRST).format_ok
    wrong_order = parse_response(answer_first, ESCI, ResponseFormat.THINK_ANSWER)
    assert wrong_order.label == "E" and not wrong_order.format_ok
    assert parse_response(answer_first, ESCI).format_ok  # no format asked: either order


def test_malformed_outputs_keep_what_can_be_read():
    assert parse_response("<think>ok</think><answer>Exact</answer>", ESCI) == ("E", "ok", False)  # name, not token
    assert parse_response("<think>ok</think>", ESCI) == (None, "ok", False)
    assert parse_response("<answer>E</answer>", ESCI) == ("E", "", False)  # no reasoning
    assert parse_response("<think>a</think><answer>E</answer><answer>S</answer>", ESCI).label == "S"
    assert not parse_response("<think>a</think><answer>E</answer> trailing", ESCI).format_ok
    assert parse_response("<think>a</think><answer>Q</answer>", ESCI) == (None, "a", False)
    assert parse_response("", ESCI) == (None, "", False)
    assert parse_response(None, TAOSR1) == (None, "", False)
    assert parse_response(b"\xff<answer>4</answer>", TAOSR1) == ("4", "\ufffd", False)  # bytes decoded leniently


@settings(max_examples=3000, deadline=None)
@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    label, reasoning, ok = parse_response(text, TAOSR1)
    assert label is None or label in TAOSR1.keys
    assert isinstance(reasoning, str) and isinstance(ok, bool)


tag_soup = st.lists(
    st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "4", "E", "Excellent", " ", "\n", "x"]),
    max_size=12,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(tag_soup)
def test_parser_on_tag_soup_is_consistent(text):
    label, _, ok = parse_response(text, TAOSR1, ResponseFormat.THINK_ANSWER)
    if ok:
        # a well-formed answer re-renders to itself
        assert label is not None
        assert text.count("<answer>") == 1 and text.count("<think>") == 1
