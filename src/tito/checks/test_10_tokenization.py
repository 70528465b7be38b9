"""Checks for module 10 (tokenization): CharTokenizer, count_pairs, merge_pair, BPETokenizer.

BPE is worked out by hand on tiny texts (`aaabdaaabac`, whose three merges are Wikipedia's; ties
go to the smallest pair), and checked against slow, obviously correct oracles written here with a
different method: pairs counted with `collections.Counter` over EVERY chunk occurrence after EVERY
merge, merges applied with `str.replace` on a character per id (which replaces left to right,
without overlaps - exactly what a merge does), and encoding as a replay of every merge in training
order. The round trip `decode(encode(s)) == s` is a property over arbitrary Unicode strings -
emoji, accents, CJK, control characters, characters the tokenizer never saw in training.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinytorch.tokenization import (SPLIT_PATTERN, BPETokenizer, CharTokenizer, count_pairs, merge_pair,
                                    split_chunks)
from tito.checks.harness import blame, call, hypothesis_settings

SETTINGS = hypothesis_settings(max_examples=40)
SMALL = "ab c\n'é."  # a tiny alphabet: many repeated pairs, a multi-byte letter, spaces, newlines

PASSAGE = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
           "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\n"
           "Resolved. resolved.\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief enemy to "
           "the people.\n\nAll:\nWe know't, we know't.\n")

train_task = pytest.mark.task("BPETokenizer.train")
encode_task = pytest.mark.task("BPETokenizer.encode")
decode_task = pytest.mark.task("BPETokenizer.decode")


def trained(text: str, vocab_size: int) -> BPETokenizer:
    """BPETokenizer().train(text, vocab_size); a crash names BPETokenizer.train, and so does a
    result that is not the tokenizer itself."""
    tok = BPETokenizer()
    out = call("BPETokenizer.train", tok.train, text, vocab_size)
    if out is not tok:
        raise AssertionError(f"BPETokenizer.train: returned {out!r}, expected the tokenizer itself "
                             "(`return self`, so that BPETokenizer().train(text, n) is the tokenizer)")
    return tok


@pytest.fixture(scope="module")
def english() -> BPETokenizer:
    """A tokenizer trained on a little English (ASCII only): 60 merges."""
    return trained(PASSAGE, 316)


# ---------------------------------------------------------------------------------------------
# Oracles: a different method than the one the lesson teaches
# ---------------------------------------------------------------------------------------------
def _as_text(ids) -> str:
    return "".join(chr(0x1000 + i) for i in ids)


def _as_ids(text: str) -> list[int]:
    return [ord(c) - 0x1000 for c in text]


def replace_pair(ids, pair, new_id) -> list[int]:
    """str.replace on one character per id: left to right, non-overlapping."""
    return _as_ids(_as_text(ids).replace(_as_text(pair), _as_text([new_id])))


def naive_merges(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """BPE the slow way: re-count every pair of every chunk occurrence after every merge."""
    words = [list(chunk.encode("utf-8")) for chunk in split_chunks(text)]
    merges = []
    for new_id in range(256, vocab_size):
        counts = Counter()
        for w in words:
            counts.update(zip(w, w[1:]))
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        words = [replace_pair(w, best, new_id) for w in words]
        merges.append(best)
    return merges


def replay_encode(merges, text: str) -> list[int]:
    """Encoding by replaying every merge, in training order, on every chunk."""
    out = []
    for chunk in split_chunks(text):
        ids = list(chunk.encode("utf-8"))
        for k, pair in enumerate(merges):
            ids = replace_pair(ids, pair, 256 + k)
        out.extend(ids)
    return out


def plain_ints(name: str, ids) -> None:
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        kinds = sorted({type(i).__name__ for i in ids}) if isinstance(ids, (list, tuple)) else []
        raise AssertionError(f"{name}: returned {type(ids).__name__} {kinds or ''}, expected a list of "
                             "Python ints")


def first_difference(got, want) -> str:
    got, want = list(got), list(want)
    k = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    return (f"first difference at index {k}: got {got[k:k + 3]}, expected {want[k:k + 3]} "
            f"(lengths {len(got)} and {len(want)})")


# ---------------------------------------------------------------------------------------------
# CharTokenizer
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("CharTokenizer")
def test_char_vocabulary_is_the_sorted_set_of_characters():
    tok = call("CharTokenizer.__init__", CharTokenizer, "hello")
    with blame("CharTokenizer.__init__", "its itos / stoi / vocab_size"):
        itos, stoi, size = dict(tok.itos), dict(tok.stoi), tok.vocab_size
    assert itos == {0: "e", 1: "h", 2: "l", 3: "o"}, \
        f"CharTokenizer.__init__: itos {itos}, expected {{0: 'e', 1: 'h', 2: 'l', 3: 'o'}} (sorted(set(text)))"
    assert stoi == {"e": 0, "h": 1, "l": 2, "o": 3}, f"CharTokenizer.__init__: stoi {stoi} is not itos inverted"
    assert size == 4, f"CharTokenizer.__init__: vocab_size {size}, expected 4"
    ids = call("CharTokenizer.encode", tok.encode, "hello")
    plain_ints("CharTokenizer.encode", ids)
    assert ids == [1, 0, 2, 2, 3], f"CharTokenizer.encode: 'hello' -> {ids}, expected [1, 0, 2, 2, 3]"
    assert call("CharTokenizer.encode", tok.encode, "") == [], "CharTokenizer.encode: '' should give []"
    text = call("CharTokenizer.decode", tok.decode, [3, 2, 0])
    assert text == "ole", f"CharTokenizer.decode: [3, 2, 0] -> {text!r}, expected 'ole'"
    text = call("CharTokenizer.decode", tok.decode, np.array([1, 0, 2, 2, 3]))
    assert text == "hello", f"CharTokenizer.decode: a NumPy array of ids -> {text!r}, expected 'hello'"
    same = call("CharTokenizer.__init__", CharTokenizer, "olleh hello")
    assert dict(same.itos) == {0: " ", **{i + 1: c for i, c in enumerate("ehlo")}}, \
        f"CharTokenizer.__init__: 'olleh hello' gave itos {dict(same.itos)}: ids must follow sorted order"


@pytest.mark.task("CharTokenizer")
@SETTINGS
@given(pair=st.text(min_size=1, max_size=40).flatmap(
    lambda t: st.tuples(st.just(t), st.text(alphabet=sorted(set(t)), max_size=30))))
@example(pair=("First Citizen:\n\u00e9\U0001F600\x00", "\U0001F600 Citizen\x00\n"))
def test_char_round_trip_property(pair):
    """Any text (any Unicode): ids are positions in sorted(set(text)), and decode inverts encode."""
    text, s = pair
    tok = call("CharTokenizer.__init__", CharTokenizer, text)
    chars = sorted(set(text))
    ids = call("CharTokenizer.encode", tok.encode, s)
    want = [chars.index(c) for c in s]
    assert ids == want, f"CharTokenizer.encode: {s!r} -> {ids}, expected {want} (vocabulary {chars})"
    assert tok.vocab_size == len(chars), f"CharTokenizer.__init__: vocab_size {tok.vocab_size}, expected {len(chars)}"
    back = call("CharTokenizer.decode", tok.decode, ids)
    assert back == s, f"CharTokenizer.decode: decode(encode({s!r})) == {back!r}"


@pytest.mark.task("CharTokenizer")
@pytest.mark.parametrize("s, ch, code, pos", [
    ("abcabx", "x", "U+0078", 5),
    ("ab\nc", "\n", "U+000A", 2),
    ("a\U0001F600b", "\U0001F600", "U+1F600", 1),
    ("zbz", "z", "U+007A", 0),  # the FIRST unknown character is the one named
])
def test_char_encode_error_names_the_character(s, ch, code, pos):
    tok = call("CharTokenizer.__init__", CharTokenizer, "abc")
    try:
        tok.encode(s)
    except ValueError as e:
        msg = str(e)
    except NotImplementedError:
        raise
    except Exception as e:
        raise AssertionError(f"CharTokenizer.encode: an unknown character raised {type(e).__name__}: {e}; "
                             "expected a ValueError that names the character") from e
    else:
        raise AssertionError(f"CharTokenizer.encode: {s!r} has {ch!r}, not in the vocabulary 'abc', but "
                             "no ValueError was raised")
    for part in (repr(ch), code, f"position {pos}"):
        assert part in msg, (f"CharTokenizer.encode: the error for {s!r} should contain {part!r} (the "
                             f"character, its code point, where it is), got: {msg}")


@pytest.mark.task("CharTokenizer")
@pytest.mark.parametrize("bad", [3, 99])
def test_char_decode_unknown_id_is_a_value_error(bad):
    tok = call("CharTokenizer.__init__", CharTokenizer, "abc")
    with blame("CharTokenizer.decode"):
        with pytest.raises(ValueError, match=str(bad)):
            tok.decode([0, bad, 1])


# ---------------------------------------------------------------------------------------------
# count_pairs, merge_pair
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("count_pairs")
@pytest.mark.parametrize("ids, want", [
    ([1, 2, 3, 1, 2], {(1, 2): 2, (2, 3): 1, (3, 1): 1}),
    ([5, 5, 5], {(5, 5): 2}),  # overlapping pairs both count
    (list(b"aaabdaaabac"), {(97, 97): 4, (97, 98): 2, (98, 100): 1, (100, 97): 1, (98, 97): 1,
                            (97, 99): 1}),
    ([7], {}),
    ([], {}),
])
def test_count_pairs_by_hand(ids, want):
    got = call("count_pairs", count_pairs, list(ids))
    assert dict(got) == want, f"count_pairs: {ids} -> {dict(got)}, expected {want}"


@pytest.mark.task("count_pairs")
@SETTINGS
@given(ids=st.lists(st.integers(0, 4), max_size=30))
def test_count_pairs_property(ids):
    before = list(ids)
    got = call("count_pairs", count_pairs, ids)
    assert ids == before, "count_pairs: changed its input list"
    want = Counter(zip(before, before[1:]))
    assert dict(got) == dict(want), f"count_pairs: {before} -> {dict(got)}, expected {dict(want)}"


@pytest.mark.task("merge_pair")
@pytest.mark.parametrize("ids, pair, new, want", [
    ([1, 2, 3, 1, 2], (1, 2), 99, [99, 3, 99]),
    ([5, 5, 5], (5, 5), 9, [9, 5]),  # left to right: the third 5 has no partner left
    ([5, 5, 5, 5], (5, 5), 9, [9, 9]),
    ([1, 2, 1], (2, 3), 9, [1, 2, 1]),  # no occurrence: unchanged
    ([1, 2], (1, 2), 300, [300]),
    ([2, 1], (1, 2), 300, [2, 1]),  # the order inside a pair matters
    ([1], (1, 2), 9, [1]),
    ([], (1, 2), 9, []),
])
def test_merge_pair_by_hand(ids, pair, new, want):
    got = call("merge_pair", merge_pair, list(ids), pair, new)
    assert list(got) == want, f"merge_pair: {ids}, {pair} -> {new}: {list(got)}, expected {want}"


@pytest.mark.task("merge_pair")
@SETTINGS
@given(ids=st.lists(st.integers(0, 3), max_size=30), a=st.integers(0, 3), b=st.integers(0, 3))
@example(ids=[0, 0, 0, 0, 0], a=0, b=0)
def test_merge_pair_property(ids, a, b):
    before = list(ids)
    got = call("merge_pair", merge_pair, ids, (a, b), 7)
    assert ids == before, "merge_pair: changed its input list (return a new one)"
    assert isinstance(got, list), f"merge_pair: returned {type(got).__name__}, expected a list"
    want = replace_pair(before, (a, b), 7)
    assert got == want, f"merge_pair: {before}, ({a}, {b}) -> 7: {got}, expected {want}"


# ---------------------------------------------------------------------------------------------
# BPETokenizer.train
# ---------------------------------------------------------------------------------------------
@train_task
def test_train_aaabdaaabac_by_hand():
    """aa -> 256 (4 times), ab -> 257 (tie with (256, a) at 2: the smaller pair), (256, 257) -> 258."""
    tok = trained("aaabdaaabac", 259)
    merges = [tuple(p) for p in tok.merges]
    assert merges == [(97, 97), (97, 98), (256, 257)], \
        f"BPETokenizer.train: 'aaabdaaabac' gave merges {merges}, expected [(97, 97), (97, 98), (256, 257)]"
    assert tok.vocab_size == 259, f"BPETokenizer.train: vocab_size {tok.vocab_size}, expected 259"
    assert tok.vocab[258] == b"aaab", f"BPETokenizer.train: token 258 is {tok.vocab[258]!r}, expected b'aaab'"


@train_task
@pytest.mark.parametrize("text, size, want", [
    ("abcd", 258, [(97, 98), (99, 100)]),  # every pair once: the smallest first
    ("bbbab", 258, [(98, 98), (97, 98)]),  # bb twice; then (256, b), ba, ab once each: ab smallest
    ("\u00e9\u00e9 \u00e9\u00e9", 257, [(0xC3, 0xA9)]),  # bytes: é is C3 A9
    ("ab ab ab", 258, [(97, 98), (32, 256)]),  # chunks 'ab', ' ab', ' ab': the space goes with the word
])
def test_train_small_texts_by_hand(text, size, want):
    merges = [tuple(p) for p in trained(text, size).merges]
    assert merges == want, f"BPETokenizer.train: {text!r} to {size} gave merges {merges}, expected {want}"


@train_task
@pytest.mark.parametrize("text, want", [("ab", [(97, 98)]), ("a", []), ("", []), ("a.", [])])
def test_train_stops_when_no_pair_is_left(text, want):
    tok = trained(text, 1000)
    merges = [tuple(p) for p in tok.merges]
    assert merges == want, f"BPETokenizer.train: {text!r} gave merges {merges}, expected {want} (stop when " \
                           "no pair is left)"
    assert tok.vocab_size == 256 + len(want), \
        f"BPETokenizer.train: vocab_size {tok.vocab_size} after {len(want)} merge(s)"


@train_task
def test_train_rejects_a_vocabulary_below_256():
    for bad in (200, 255):
        with blame("BPETokenizer.train"):
            with pytest.raises(ValueError, match="256"):
                BPETokenizer().train("hello", bad)
    tok = trained("hello", 256)
    assert tok.merges == [] and tok.vocab_size == 256, \
        f"BPETokenizer.train: vocab_size=256 means no merge, got {tok.merges} (vocab_size {tok.vocab_size})"


@train_task
@SETTINGS
@given(text=st.text(alphabet=SMALL, max_size=60), extra=st.integers(0, 30))
@example(text="aaa aaa aa a\n\naaa", extra=10)
@example(text="abab ab'c abab.\n ab", extra=20)
def test_train_matches_a_full_recount_after_every_merge(text, extra):
    """The incremental counts must give exactly the merges of re-counting everything each time."""
    want = naive_merges(text, 256 + extra)
    got = [tuple(p) for p in trained(text, 256 + extra).merges]
    assert got == want, (f"BPETokenizer.train: on {text!r} (vocab_size {256 + extra}) the merges differ "
                         f"from a full re-count after every merge: {first_difference(got, want)}")


@train_task
def test_train_never_merges_across_chunks():
    text = "the cat sat. the cat sat, the cat sat on the mat.\nthe cat sat.\n" * 3
    tok = trained(text, 400)
    for i in range(256, tok.vocab_size):
        piece = tok.vocab[i].decode("utf-8")
        assert split_chunks(piece) == [piece] or piece.isspace(), \
            f"BPETokenizer.train: token {i} = {piece!r} spans chunks {split_chunks(piece)}: train on " \
            "the chunks of split_chunks(text), never across them"


@train_task
def test_train_again_starts_from_scratch(capsys):
    tok = trained("aaabdaaabac", 259)
    call("BPETokenizer.train", tok.train, "abcd", 258)
    merges = [tuple(p) for p in tok.merges]
    assert merges == [(97, 98), (99, 100)], f"BPETokenizer.train: a second train gave {merges}: start " \
                                            "from an empty merge list"
    assert tok.vocab_size == 258 and tok.vocab[257] == b"cd", \
        f"BPETokenizer.train: after the second train, vocab_size {tok.vocab_size}, token 257 " \
        f"{tok.vocab.get(257)!r}: call self._rebuild() at the end"
    assert capsys.readouterr().out == "", "BPETokenizer.train: printed without verbose=True"
    call("BPETokenizer.train", tok.train, "abcd", 258, verbose=True)
    assert capsys.readouterr().out.strip(), "BPETokenizer.train: verbose=True printed nothing"


# ---------------------------------------------------------------------------------------------
# BPETokenizer.encode
# ---------------------------------------------------------------------------------------------
@encode_task
@pytest.mark.parametrize("text, size, s, want", [
    ("aaabdaaabac", 259, "aaabdaaabac", [258, 100, 258, 97, 99]),
    ("aaabdaaabac", 259, "aab", [256, 98]),  # aa (256) was learnt before ab (257): aa wins the middle a
    ("aaabdaaabac", 259, "aaab", [258]),
    ("bbbab", 258, "abb", [97, 256]),  # bb (256) first, although ab (257) comes first in the string
    ("ab ab ab", 258, "ab ab", [256, 257]),
    ("ab ab ab", 258, "", []),
])
def test_encode_by_hand(text, size, s, want):
    tok = trained(text, size)
    ids = call("BPETokenizer.encode", tok.encode, s)
    plain_ints("BPETokenizer.encode", ids)
    assert ids == want, (f"BPETokenizer.encode: {s!r} with merges {[tuple(p) for p in tok.merges]} gave "
                         f"{ids}, expected {want} (merge the present pair learnt first, repeatedly)")


@encode_task
@SETTINGS
@given(s=st.text(alphabet=SMALL + "xyz\u00fc", max_size=50))
@example(s="ab ab'c abab.\n\n ab  c")
def test_encode_is_a_replay_of_the_merges(s):
    tok = trained("abab ab'c abab.\n ab\n\nc c c'\u00e9 \u00e9\u00e9.." * 2, 300)
    merges = [tuple(p) for p in tok.merges]
    got = call("BPETokenizer.encode", tok.encode, s)
    want = replay_encode(merges, s)
    assert got == want, f"BPETokenizer.encode: {s!r} -> {got}, expected {want}: {first_difference(got, want)}"
    again = call("BPETokenizer.encode", tok.encode, s)
    assert again == want, f"BPETokenizer.encode: a second encode of {s!r} differs (the cache?)"


@encode_task
def test_encode_caches_each_distinct_chunk():
    tok = trained("the cat sat on the mat. " * 4, 280)
    call("BPETokenizer.encode", tok.encode, "the cat, the cat, the hat")
    with blame("BPETokenizer.encode", "its cache self._cache"):
        cached = dict(tok._cache)
    want = set(split_chunks("the cat, the cat, the hat"))
    assert set(cached) == want, (f"BPETokenizer.encode: self._cache holds {sorted(cached)}, expected one "
                                 f"entry per distinct chunk {sorted(want)} (chunks repeat: look each "
                                 "one up before merging it again)")
    for chunk, ids in cached.items():
        assert list(ids) == replay_encode([tuple(p) for p in tok.merges], chunk), \
            f"BPETokenizer.encode: self._cache[{chunk!r}] = {ids} is not that chunk's encoding"


@encode_task
@pytest.mark.parametrize("s", ["\u00e9", "\U0001F600", "\u65e5\u672c", "\x00\x7f", "\ufffd"])
def test_encode_unseen_characters_are_their_bytes(english, s):
    ids = call("BPETokenizer.encode", english.encode, s)
    want = list(s.encode("utf-8"))
    assert ids == want, f"BPETokenizer.encode: {s!r}, never seen in training, gave {ids}, expected its " \
                        f"UTF-8 bytes {want}"


@encode_task
def test_encode_compresses_its_training_text(english):
    ids = call("BPETokenizer.encode", english.encode, PASSAGE)
    want = replay_encode([tuple(p) for p in english.merges], PASSAGE)
    assert ids == want, f"BPETokenizer.encode: the training text: {first_difference(ids, want)}"
    assert len(ids) < 0.75 * len(PASSAGE.encode()), \
        f"BPETokenizer.encode: {len(ids)} tokens for {len(PASSAGE)} bytes of its own training text"


# ---------------------------------------------------------------------------------------------
# BPETokenizer.decode
# ---------------------------------------------------------------------------------------------
@decode_task
@SETTINGS
@given(s=st.text(max_size=60))
@example(s="First Citizen: caf\u00e9 \U0001F600 \u65e5\u672c\u8a9e \x00\r\n\t \u200b\ufeff")
@example(s="We know't, we know't.  \n\n  ")
def test_decode_encode_round_trip_any_unicode(english, s):
    """decode(encode(s)) == s for every string, characters never seen in training included."""
    ids = call("BPETokenizer.encode", english.encode, s)
    back = call("BPETokenizer.decode", english.decode, ids)
    assert back == s, f"BPETokenizer.decode: decode(encode({s!r})) == {back!r} (ids {ids})"


@decode_task
def test_decode_by_hand():
    tok = trained("aaabdaaabac", 259)
    cases = [([258, 100], "aaabd"), ([256, 257, 97], "aaaba"), ([], ""), ([0xC3, 0xA9], "\u00e9"),
             (np.array([258, 99]), "aaabc")]
    for ids, want in cases:
        got = call("BPETokenizer.decode", tok.decode, ids)
        assert got == want, f"BPETokenizer.decode: {list(ids)} -> {got!r}, expected {want!r}"


@decode_task
@pytest.mark.parametrize("ids, want", [([0xC3], "\ufffd"), ([0xFF, 97], "\ufffda"),
                                       ([0xF0, 0x9F, 0x98], "\ufffd")])
def test_decode_invalid_utf8_is_replaced(english, ids, want):
    got = call("BPETokenizer.decode", english.decode, ids)
    assert got == want, (f"BPETokenizer.decode: {ids} (not valid UTF-8) -> {got!r}, expected {want!r}: "
                         "decode the bytes with errors='replace'")


@decode_task
def test_decode_unknown_id_is_a_value_error(english):
    for bad in (english.vocab_size, english.vocab_size + 7, -1):
        with blame("BPETokenizer.decode"):
            with pytest.raises(ValueError, match=re.escape(str(bad))):
                english.decode([97, bad])


# ---------------------------------------------------------------------------------------------
# BPETokenizer.save / load
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("BPETokenizer.save")
@pytest.mark.task("BPETokenizer.load")
@pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
def test_save_load_round_trip(english, tmp_path, as_str):
    path = tmp_path / "bpe.json"
    call("BPETokenizer.save", english.save, str(path) if as_str else path)
    with blame("BPETokenizer.save", "the saved file should be JSON"):
        data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and "merges" in data, \
        f"BPETokenizer.save: the JSON should be an object with a 'merges' list, got {str(data)[:80]}"
    header = {k: data.get(k) for k in ("format", "version", "pattern")}
    want = {"format": "tinytorch.BPETokenizer", "version": 1, "pattern": SPLIT_PATTERN.pattern}
    assert header == want, f"BPETokenizer.save: the JSON has {header}, expected {want}"
    assert data["merges"] == [list(p) for p in english.merges], \
        f"BPETokenizer.save: 'merges' should be [[a, b], ...] in merge order, got {data['merges'][:3]}..."
    loaded = call("BPETokenizer.load", BPETokenizer.load, str(path) if as_str else path)
    assert isinstance(loaded, BPETokenizer), f"BPETokenizer.load: returned {type(loaded).__name__}"
    assert loaded is not english, "BPETokenizer.load: should return a new tokenizer"
    merges = list(loaded.merges)
    assert merges == [tuple(p) for p in english.merges] and all(type(p) is tuple for p in merges), \
        f"BPETokenizer.load: merges {merges[:4]}..., expected {english.merges[:4]}... as (a, b) tuples"
    assert loaded.vocab_size == english.vocab_size, \
        f"BPETokenizer.load: vocab_size {loaded.vocab_size}, expected {english.vocab_size}"
    s = PASSAGE + " caf\u00e9 \U0001F600"
    ids = call("BPETokenizer.encode", loaded.encode, s)
    assert ids == english.encode(s), "BPETokenizer.load: the loaded tokenizer encodes differently"
    assert call("BPETokenizer.decode", loaded.decode, ids) == s, "BPETokenizer.load: round trip broken"


@pytest.mark.task("BPETokenizer.load")
@pytest.mark.parametrize("content", ['{"merges": [[97, 98]]}', "[1, 2, 3]",
                                     '{"format": "tinytorch.BPETokenizer", "version": 1, '
                                     '"merges": [[97, 300]]}',
                                     '{"format": "tinytorch.BPETokenizer", "version": 1, '
                                     '"pattern": "\\\\S+|\\\\s+", "merges": [[97, 98]]}',
                                     '{"format": "tinytorch.BPETokenizer", "version": 1}',
                                     '{"format": "tinytorch.BPETokenizer", "version": 1, '
                                     '"merges": [[97, 98, 99]]}'],
                         ids=["no-format", "not-an-object", "merge-of-a-later-id", "another-pattern",
                              "no-merges-list", "merge-not-a-pair"])
def test_load_rejects_what_save_did_not_write(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content, encoding="utf-8")
    with blame("BPETokenizer.load"):
        with pytest.raises(ValueError):
            BPETokenizer.load(path)
