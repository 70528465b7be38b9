# %% [markdown]
# # Module 10 - Tokenization
#
# A language model never sees text. It sees a sequence of integers, and it learns one vector per
# integer (module 11's embedding table) and predicts the next integer with a softmax over all of
# them (module 13's language-model head). The tokenizer is the translation between the two
# worlds: `encode("To be")` gives the ids the model is trained on, `decode(ids)` turns the model's
# predictions back into text. In this module you write two tokenizers: a character-level one, the
# simplest possible, and a byte-level Byte-Pair Encoding (BPE) tokenizer of the kind GPT-2, GPT-4
# and Llama use - trained on text, able to encode ANY string, even one in a script it never saw.
#
# What you choose here fixes two numbers for every model built on top of it: the **vocabulary
# size** $V$ (the rows of the embedding table, the columns of the output softmax) and the
# **tokens per character** (how long a sequence a piece of text becomes, and so how much text fits
# in the model's context). Together with modules 11-13 this unlocks milestone 05, a small GPT
# trained on Shakespeare.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `CharTokenizer`: a vocabulary from a text, `encode`, `decode`, an error that names the character | `check("10", "CharTokenizer")` |
# | 2 | `count_pairs`: how often each adjacent pair of ids occurs | `check("10", "count_pairs")` |
# | 3 | `merge_pair`: replace every occurrence of a pair by a new id | `check("10", "merge_pair")` |
# | 4 | `BPETokenizer`: `train`, `encode`, `decode`, `save` / `load` | `check("10", "BPETokenizer.train")`, ... |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell and
# a check cell that runs the same checks as `tito module test 10 --task <name>`. The checks work
# BPE out by hand on tiny texts (the merge order is fixed to the last tie), compare your training
# with a slow, obviously correct re-count of every pair after every merge, and generate random
# strings - emoji, accents, Chinese, control characters - that must survive
# `decode(encode(s)) == s` exactly.
#
# From a terminal:
#
#     tito module test 10                             all checks on your file
#     tito module test 10 --task BPETokenizer.train   only the training checks
#     python bench/bench_bpe.py                       (repository) a 512-token BPE on Tiny Shakespeare

# %%
"""Module 10: tokenization - text to integer ids and back.

CharTokenizer(text)      vocabulary = sorted(set(text)); id = position in that list
    encode(s) -> list[int],  decode(ids) -> str;  an unknown character is a ValueError that
    names it, its code point and its position.

BPETokenizer()           byte-level Byte-Pair Encoding (Sennrich et al. 2016; GPT-2 2019)
    ids 0..255 are the 256 byte values; merge k (k = 0, 1, ...) makes id 256 + k from the pair
    (a, b) of existing ids, so token 256 + k is the bytes of a followed by the bytes of b.
    train(text, vocab_size): split the text into chunks (split_chunks: words with their leading
        space, numbers, punctuation runs, whitespace), count every adjacent pair over the UNIQUE
        chunks weighted by how often each occurs, merge the most frequent pair (ties: the
        smallest pair (a, b)), update the counts of the chunks that changed, repeat.
    encode(s): per chunk, the UTF-8 bytes, then repeatedly merge the present pair that was
        learnt first (lowest new id) - the same as replaying the merges in training order.
    decode(ids): concatenate the tokens' bytes, decode UTF-8 (errors="replace" only matters for
        id sequences that encode never produces).
    save(path) / BPETokenizer.load(path): the merges as JSON.

decode(encode(s)) == s for every string s (every str that UTF-8 can encode: not lone surrogates).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

# %% [markdown]
# ## Why tokenize, and the three choices of unit
#
# A neural network computes with numbers, so text has to become numbers first. The recipe is
# always the same: fix a finite **vocabulary** of pieces, give each piece an integer **id**, and
# cut every text into pieces from the vocabulary. The model then learns an embedding vector per id
# and, at its output, a probability for every id. What differs is what a piece is:
#
# - **Characters.** The vocabulary is the set of characters in the training text: 65 for Tiny
#   Shakespeare (letters, digits, punctuation, space, newline). Tiny and simple, but every
#   character is one step of the sequence, and the model must learn spelling before it can learn
#   anything else. A character that was not in the training text cannot be encoded at all.
# - **Bytes.** Every string is a sequence of bytes in UTF-8, so a vocabulary of exactly 256 ids
#   encodes everything: English, Chinese, emoji, code. Nothing is ever unknown. But sequences
#   get even longer than with characters: an accented letter is 2 bytes, a Chinese character 3,
#   an emoji 4.
# - **Subwords.** Start from bytes and learn, from a corpus, which byte sequences are frequent
#   enough to deserve their own id: `" the"`, `"ing"`, `" King"`. Common words become one token,
#   rare words a few pieces, and unseen text still falls back to bytes. This is Byte-Pair
#   Encoding, and what every large language model since GPT-2 uses.
#
# Why not whole words? The vocabulary would be enormous (English has hundreds of thousands of word
# forms, and every name and typo is another), and any word not in it would have to become an
# `<unk>` token: the model could neither read nor write it. Subwords keep the vocabulary bounded
# and the coverage total.
#
# Systems view: the vocabulary size $V$ appears twice in the model. The embedding table has
# $V \times d$ parameters, and the output layer computes $V$ logits per position, $2Vd$ FLOPs per
# token, followed by a softmax over $V$ numbers. The sequence length $T$ appears in everything
# else - every layer runs once per position, and attention compares every pair of positions,
# $O(T^2)$. The tokenizer trades one against the other; the last section measures the trade.

# %% [markdown]
# ## CharTokenizer: one id per character
#
# The vocabulary is the sorted set of characters of a text; a character's id is its position in
# that sorted list. For `"hello"`: the set is $\{h, e, l, o\}$, sorted `['e', 'h', 'l', 'o']`, so
#
# | character | `e` | `h` | `l` | `o` |
# |---|---|---|---|---|
# | id | 0 | 1 | 2 | 3 |
#
# and `encode("hello") == [1, 0, 2, 2, 3]`, `decode([3, 2, 0]) == "ole"`. Sorting makes the
# vocabulary a function of the *set* of characters only: two texts with the same characters give
# the same ids, whatever their order - so a model trained with one tokenizer can be used with the
# other. (Python sorts strings by code point: uppercase before lowercase, `"\n"` and `" "` first.)
#
# Write three things:
#
# - `__init__(text)`: `self.itos`, a dict id -> character (`dict(enumerate(chars))`), and
#   `self.stoi`, its inverse, character -> id. (`vocab_size` is given: `len(self.stoi)`.)
# - `encode(s)`: the list of ids, as Python ints. The fast path is one list comprehension over
#   `self.stoi`; when it raises `KeyError`, find the first character that is not in the
#   vocabulary and raise a `ValueError` that says exactly which one and where, like
#   `CharTokenizer.encode: character 'x' (U+0078) at position 5 is not in the vocabulary ...`.
#   Use `{ch!r}` for the character (a newline shows as `'\n'`, not as a line break) and
#   `U+{ord(ch):04X}` for its code point: many characters look alike or are invisible (a
#   non-breaking space U+00A0 prints exactly like a space U+0020), and the code point is what
#   tells them apart.
# - `decode(ids)`: join the characters; an id outside the vocabulary is a `ValueError` that names
#   the id. `ids` may be any iterable of integers, a NumPy array included (what a model's
#   `generate` returns).
#
# Systems view: encoding is a dictionary lookup per character, well under a microsecond in
# CPython, so the 1.1 million characters of Tiny Shakespeare take a few tenths of a second - done once, before
# training, and the ids stored as an array. The price is paid later: one model step per character.

# %% nbgrader={"grade": false, "grade_id": "char-tokenizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CharTokenizer:
    """One id per character of the training text: id = position in sorted(set(text))."""

    def __init__(self, text: str):
        # HINT: chars = sorted(set(text)); itos: id -> char, stoi: char -> id
        ### BEGIN SOLUTION
        chars = sorted(set(text))
        self.itos = dict(enumerate(chars))
        self.stoi = {ch: i for i, ch in self.itos.items()}
        ### END SOLUTION

    @property
    def vocab_size(self) -> int:
        return len(self.stoi)

    def encode(self, s: str) -> list[int]:
        # HINT: try the list comprehension; on KeyError, enumerate(s) to find the first unknown
        # character and raise ValueError naming it ({ch!r}, U+{ord(ch):04X}) and its position
        ### BEGIN SOLUTION
        try:
            return [self.stoi[ch] for ch in s]
        except KeyError:
            pos, ch = next((i, c) for i, c in enumerate(s) if c not in self.stoi)
            raise ValueError(f"CharTokenizer.encode: character {ch!r} (U+{ord(ch):04X}) at position "
                             f"{pos} is not in the vocabulary ({self.vocab_size} characters, from the "
                             "text the tokenizer was built on); build it from a text that contains "
                             "this character, or use BPETokenizer, which encodes any string") from None
        ### END SOLUTION

    def decode(self, ids) -> str:
        # HINT: "".join of self.itos[i]; turn a KeyError into a ValueError that names the id
        ### BEGIN SOLUTION
        try:
            return "".join(self.itos[i] for i in ids)
        except KeyError as e:
            raise ValueError(f"CharTokenizer.decode: id {e.args[0]} is not in the vocabulary "
                             f"(ids 0..{self.vocab_size - 1})") from None
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# %%
if __name__ == "__main__":
    tok = CharTokenizer("hello")
    print(tok, tok.itos)
    print(tok.encode("hello"), repr(tok.decode([3, 2, 0])))
    try:
        tok.encode("hello world")
    except ValueError as e:
        print(e)

# %% nbgrader={"grade": true, "grade_id": "check-char-tokenizer", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "CharTokenizer")

# %% [markdown]
# ## Characters, code points and UTF-8 bytes
#
# A Python `str` is a sequence of Unicode **code points**: integers from 0 to 0x10FFFF, one per
# character (`ord("é") == 0xE9`). To store or send text, code points become bytes, and the
# encoding everyone uses is **UTF-8**. It is variable-length: a code point takes 1 to 4 bytes,
# and the first bits of each byte say which kind of byte it is:
#
# | code points | bytes | bit pattern |
# |---|---|---|
# | U+0000 - U+007F (ASCII) | 1 | `0xxxxxxx` |
# | U+0080 - U+07FF (accents, Greek, Cyrillic, Hebrew, Arabic) | 2 | `110xxxxx 10xxxxxx` |
# | U+0800 - U+FFFF (most of the rest: Chinese, Japanese, Hindi, €) | 3 | `1110xxxx 10xxxxxx 10xxxxxx` |
# | U+10000 - U+10FFFF (emoji, rare scripts) | 4 | `11110xxx 10xxxxxx 10xxxxxx 10xxxxxx` |
#
# Worked by hand: `é` is U+00E9 = binary `000 1110 1001` (11 bits). The 2-byte pattern has room
# for 5 + 6 bits: `110 00011` and `10 101001`, that is `C3 A9`. The euro sign U+20AC = `0010 0000
# 1010 1100` fills the 3-byte pattern as `1110 0010`, `10 000010`, `10 101100` = `E2 82 AC`; 😀
# U+1F600 is `F0 9F 98 80`. ASCII text is unchanged - one byte per character, the same bytes as
# in 1963 - which is why UTF-8 won.
#
# Two properties make UTF-8 the right base for a tokenizer. First, **every** string has an
# encoding, so a byte-level vocabulary of 256 ids is complete: nothing is ever out of vocabulary.
# Second, it is self-synchronising: continuation bytes all start with `10`, so a decoder can tell
# where characters begin. The flip side: not every byte sequence is valid UTF-8. `C3` alone is
# the first half of a character; `FF` never occurs. A model that generates byte-level ids can
# produce such sequences, and `bytes.decode("utf-8", errors="replace")` turns each broken piece
# into U+FFFD `�` instead of failing. (A program that streams a model's output token by token
# must therefore hold back an incomplete character until its last byte arrives.)
#
# Systems view: for English, bytes per character is about 1.0 (Tiny Shakespeare is pure ASCII:
# 1,115,394 characters, 1,115,394 bytes); for Russian about 2; for Chinese or Hindi about 3. A
# byte-level model of Chinese needs sequences three times longer than a character-level one -
# and a subword tokenizer trained mostly on English gives other languages more tokens per word,
# so the same text costs more to process and fits less of it in the context.
#
# Run the cell below to see the bytes of a few strings.

# %%
if __name__ == "__main__":
    for s in ["A", "é", "€", "😀", "naïve café", "日本"]:
        b = s.encode("utf-8")
        print(f"{s!r:14} {len(s)} code point(s), {len(b)} byte(s): {b.hex(' ').upper()}   ids {list(b)}")
    print(repr(bytes([0xC3]).decode("utf-8", errors="replace")), "<- half a character, replaced")

# %% [markdown]
# ## Byte-Pair Encoding, worked out by hand
#
# BPE (Gage 1994, a compression scheme; Sennrich et al. 2016 for translation; GPT-2 on bytes)
# builds a vocabulary bottom-up. Start with one id per byte. Then, repeatedly: count every pair
# of adjacent ids in the training text, take the most frequent pair $(a, b)$, give it a new id,
# and replace every occurrence of $a$ followed by $b$ by that id. Each step is a **merge**; the
# list of merges, in order, *is* the trained tokenizer.
#
# The classic example, `aaabdaaabac` (bytes `a` = 97, `b` = 98, `c` = 99, `d` = 100):
#
# 1. Pairs in `a a a b d a a a b a c`: `aa` 4 times (twice in each `aaa` - pairs overlap),
#    `ab` 2, `bd`, `da`, `ba`, `ac` once each. Merge `aa` -> **256**:
#    `256 a b d 256 a b a c`. (Each `aaa` becomes `256 a`: occurrences are replaced left to right.)
# 2. Pairs now: `(256, a)` 2, `(a, b)` 2, every other pair once. A tie: the rule here (and in the
#    checks) is **the smallest pair wins**, comparing $(a, b)$ as a tuple: $(97, 98) < (256, 97)$,
#    so merge `ab` -> **257**: `256 257 d 256 257 a c`.
# 3. Pairs: `(256, 257)` 2, the rest once. Merge -> **258** (the bytes `aaab`): `258 d 258 a c`.
# 4. Every pair occurs once now. Merging on would still compress a little, up to the requested
#    vocabulary size; when no pair is left at all, training stops early.
#
# Eleven bytes became five tokens with three merges: `merges = [(97, 97), (97, 98), (256, 257)]`,
# and the vocabulary is the 256 bytes plus `aa`, `ab`, `aaab`. Each merge adds one token, so the
# vocabulary size is exactly what you ask for: $V = 256 + \text{number of merges}$.
#
# To **encode** a new text with these merges, replay them: `aab` -> merge 256 (`aa`) -> `256 b`;
# `(256, 98)` was never learnt, so the encoding is `[256, 98]`. **Decoding** is concatenation:
# token 258 is the bytes of 256 followed by those of 257, `aa` + `ab` = `aaab`.
#
# Two small functions do all of the work; you write them first.
#
# `count_pairs(ids)` returns a dict from each adjacent pair to the number of times it occurs:
# `count_pairs([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}`; `count_pairs([5, 5, 5]) ==
# {(5, 5): 2}` (overlapping pairs both count); fewer than two ids give `{}`. The adjacent pairs
# are exactly `zip(ids, ids[1:])`.
#
# Systems view: one pass, $O(n)$, with a dict update per pair - a few hundred nanoseconds each in
# CPython, so counting the 1.1 million pairs of Tiny Shakespeare once takes a fraction of a second,
# and merging one pair through the whole text about as long. A naive trainer does both once per
# merge: about a second per merge, minutes for 256 merges, days for GPT-2's 50,000. The trainer
# below counts each *distinct* chunk once and after a merge re-counts only the chunks that contain
# the merged pair.

# %% nbgrader={"grade": false, "grade_id": "count-pairs", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_pairs(ids: list[int]) -> dict[tuple[int, int], int]:
    """{(a, b): how many times b directly follows a in ids}."""
    # HINT: loop over zip(ids, ids[1:]); counts[pair] = counts.get(pair, 0) + 1
    ### BEGIN SOLUTION
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


# %%
if __name__ == "__main__":
    print(count_pairs([1, 2, 3, 1, 2]))
    print(count_pairs([5, 5, 5]), count_pairs([7]))
    print(count_pairs(list(b"aaabdaaabac")))

# %% nbgrader={"grade": true, "grade_id": "check-count-pairs", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "count_pairs")

# %% [markdown]
# ## merge_pair: one merge, left to right
#
# `merge_pair(ids, pair, new_id)` returns a NEW list in which every occurrence of `pair[0]`
# directly followed by `pair[1]` is replaced by `new_id`, scanning left to right:
#
# - `merge_pair([1, 2, 3, 1, 2], (1, 2), 99) == [99, 3, 99]`;
# - `merge_pair([5, 5, 5], (5, 5), 9) == [9, 5]`: once the first two 5s are merged, the third has
#   no partner left;
# - `merge_pair([5, 5, 5, 5], (5, 5), 9) == [9, 9]`.
#
# Walk an index `i` along `ids`: if `ids[i], ids[i + 1]` is the pair (mind the end of the list),
# append `new_id` and step 2; otherwise append `ids[i]` and step 1. Do not modify `ids`: the
# trainer keeps the old list until it has taken its pair counts out.
#
# Systems view: $O(n)$ and a new list per call. Merging one pair throughout a 1 MB text is one
# pass over a million ids; the trainer below calls it only on the few thousand distinct chunks
# that contain the pair, and the encoder on one chunk at a time.

# %% nbgrader={"grade": false, "grade_id": "merge-pair", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """A new list: every (pair[0], pair[1]) in ids, left to right, replaced by new_id."""
    # HINT: i = 0; while i < len(ids): compare ids[i] and ids[i + 1] (if i + 1 < len(ids))
    ### BEGIN SOLUTION
    out, i, a, b = [], 0, pair[0], pair[1]
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


# %%
if __name__ == "__main__":
    print(merge_pair([1, 2, 3, 1, 2], (1, 2), 99))
    print(merge_pair([5, 5, 5], (5, 5), 9), merge_pair([5, 5, 5, 5], (5, 5), 9))
    ids = list(b"aaabdaaabac")
    for new_id, pair in enumerate([(97, 97), (97, 98), (256, 257)], start=256):
        ids = merge_pair(ids, pair, new_id)
        print(f"merge {pair} -> {new_id}: {ids}")

# %% nbgrader={"grade": true, "grade_id": "check-merge-pair", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "merge_pair")

# %% [markdown]
# ## Given: split the text into chunks first
#
# Run BPE on raw Shakespeare and some of the first merges are `e` + space, then `, ` + newline:
# pairs that cross word boundaries. Tokens such as `"d, the"` waste vocabulary on accidental
# neighbours, and the same word gets different tokens depending on what follows it. GPT-2's fix
# is to cut the text into **chunks** with a regular expression before anything else, and never
# merge across a chunk boundary. A chunk is one of:
#
# - an English contraction suffix: `'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`;
# - a run of letters, with the one space before it: `" citizens"` - so a word and its leading
#   space become one token, and `"the"` at the start of a line differs from `" the"`;
# - a run of digits (with one leading space), a run of other symbols (with one leading space);
# - whitespace: a run of spaces or newlines, except that the last space before a word goes to the
#   word.
#
# `"We know't, we know't."` splits into `'We' ' know' "'t" ',' ' we' ' know' "'t" '.'`.
# GPT-2 writes the pattern with the Unicode classes `\p{L}` (letters) and `\p{N}` (numbers) of the
# third-party `regex` package; the standard library's `re` spells the same idea with `[^\W\d_]`
# (word characters that are neither digits nor underscore) and `\d`. One property matters more than
# the details: **the alternatives cover every character**, so `"".join(split_chunks(s)) == s` for
# every string, and no text is ever lost. (Every character is whitespace, a word character, or
# neither; each of those has its alternative.)
#
# The trainer also uses the chunks for speed. Tiny Shakespeare has 297,833 chunks but only 15,057
# *distinct* ones - `" the"` alone occurs thousands of times. Counting pairs per distinct chunk,
# weighted by its number of occurrences, gives the same counts as going through the text, with a
# twentieth of the work.

# %%
# GPT-2's pre-tokenisation pattern, written for the standard library's `re`
SPLIT_PATTERN = re.compile(r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def split_chunks(text: str) -> list[str]:
    """The text cut into chunks that BPE never merges across; "".join(chunks) == text."""
    return SPLIT_PATTERN.findall(text)


# %%
if __name__ == "__main__":
    print(split_chunks("We know't, we know't."))
    print(split_chunks("First Citizen:\nBefore we proceed any further,  hear me speak.\n"))
    print(split_chunks("x_1 = 3.14 # naïve 日本 😀"))

# %% [markdown]
# ## BPETokenizer: train, encode, decode, save, load
#
# The tokenizer's state is the list `self.merges` of pairs $(a, b)$ in merge order: merge $k$
# made id $256 + k$. Everything else is derived from it by the given `_rebuild` method:
# `self.vocab` maps every id to its bytes (`vocab[256 + k] = vocab[a] + vocab[b]`), and
# `self.ranks` maps each learnt pair to the id it makes (a lower id = learnt earlier).
# `vocab_size` is `len(self.vocab)`.
#
# **`train(text, vocab_size, verbose=False)`** learns `vocab_size - 256` merges and returns `self`.
# A `vocab_size` below 256 is a `ValueError` (the 256 bytes are always there). Then:
#
# 1. Chunks and their frequencies: `Counter(split_chunks(text))`. Keep one list of byte ids per
#    distinct chunk (`list(chunk.encode("utf-8"))`) and its frequency.
# 2. Pair counts over the distinct chunks, weighted: chunk `" the"` seen 5,000 times adds 5,000 to
#    each of its pairs. Also remember, per pair, which chunks contain it (`defaultdict(set)`).
# 3. For each new id from 256 up to `vocab_size - 1`: stop if no pair is left. Pick the most
#    frequent pair, ties going to the smallest pair - `min(counts, key=lambda p: (-counts[p], p))`.
#    For every chunk that contains it: subtract that chunk's pair counts (times its frequency),
#    `merge_pair` it, add the new chunk's pair counts back and note the chunk under each of its
#    new pairs. Delete pairs whose count reaches 0 (or the `min` would pick a pair that no longer
#    exists). Append the pair to `self.merges`.
# 4. Call `self._rebuild()`, return `self`.
#
# Re-counting a whole chunk (not just the pairs around the merge) keeps the bookkeeping obviously
# right even when a merge overlaps itself, as in `aaa`; chunks are short, so it costs little. The
# checks compare your merges with a trainer that re-counts *every* pair of *every* chunk after each
# merge: the same merges, in the same order, or the check shows the first one that differs.
# Training again starts from scratch (`self.merges = []` first). With `verbose`, print each merge
# as it is made (the new id, the pair, the bytes it stands for, its count).
#
# **`encode(text)`**: for each chunk, start from its UTF-8 bytes and repeatedly merge the pair
# that was learnt first among the pairs present (the one with the lowest `self.ranks` value),
# until no present pair has been learnt. The result is identical to replaying every merge in
# training order (a merge can only create pairs containing its new id, and those were learnt
# later), but it touches only the merges that apply. Chunks repeat, so keep each chunk's ids in the
# given cache `self._cache` (chunk -> list of ids) and look there first; `_rebuild` empties it.
# Return one flat list of Python ints. Characters never seen in training are no problem: their
# bytes are ids 0-255, always in the vocabulary.
#
# **`decode(ids)`**: `b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")`, and
# an id that is not in the vocabulary is a `ValueError` that names it. For anything `encode`
# produced the bytes are valid UTF-8 and the result is exactly the original string;
# `errors="replace"` only matters for id sequences that a model made up.
#
# **`save(path)`** writes JSON: `{"format": "tinytorch.BPETokenizer", "version": 1, "pattern": ...,
# "merges": [[a, b], ...]}` - the split pattern too, so that a tokenizer is never loaded with a
# different one. **`BPETokenizer.load(path)`** (a classmethod) reads it back: check the format,
# make `cls()`, set `merges` (as tuples), `_rebuild()`. JSON, not pickle: it is readable, and
# loading it runs no code.
#
# Systems view: training on Tiny Shakespeare (1.1 MB) to 512 tokens takes a few seconds this way
# (`bench/bench_bpe.py` measures it: 3.4 s on a busy 2-core machine); re-counting and merging the
# whole text after every merge - what the checks do on their tiny texts, as the reference - would
# take minutes. Encoding is dominated by the regex split and, thanks to the cache, costs about a
# microsecond per character (1.4 s for the whole corpus).

# %% nbgrader={"grade": false, "grade_id": "bpe-tokenizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BPETokenizer:
    """Byte-level BPE: ids 0..255 are bytes, id 256 + k is merge k = merges[k] = (a, b)."""

    FORMAT = "tinytorch.BPETokenizer"

    def __init__(self):
        self.merges: list[tuple[int, int]] = []
        self._rebuild()

    def _rebuild(self) -> None:
        """vocab (id -> bytes), ranks ((a, b) -> new id) and an empty encode cache, from merges."""
        self.vocab = {i: bytes([i]) for i in range(256)}
        self.ranks = {}
        for new_id, (a, b) in enumerate(self.merges, start=256):
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(f"BPETokenizer: merge {new_id - 256} is {(a, b)}, but only ids "
                                 f"0..{new_id - 1} exist before it")
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
            self.ranks[(a, b)] = new_id
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _bytes(self, token: int) -> bytes:
        """The bytes of `token` under self.merges (also while training, before _rebuild)."""
        if token < 256:
            return bytes([token])
        a, b = self.merges[token - 256]
        return self._bytes(a) + self._bytes(b)

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> "BPETokenizer":
        # HINT: freq = Counter(split_chunks(text)); words = [list(c.encode("utf-8")) for c in freq]
        # HINT: counts: pair -> weighted count, where: pair -> set of word indices (defaultdict(set))
        # HINT: per merge: best = min(counts, key=lambda p: (-counts[p], p)); for i in where.pop(best):
        #       subtract count_pairs(words[i]) * f, merge_pair, add the new word's pairs back
        ### BEGIN SOLUTION
        if vocab_size < 256:
            raise ValueError(f"BPETokenizer.train: vocab_size={vocab_size}, but the 256 byte values are "
                             "always in the vocabulary: ask for at least 256")
        chunk_freq = Counter(split_chunks(text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_freq]
        freqs = list(chunk_freq.values())
        counts: dict[tuple[int, int], int] = {}
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for i, (word, f) in enumerate(zip(words, freqs)):
            for pair, n in count_pairs(word).items():
                counts[pair] = counts.get(pair, 0) + n * f
                where[pair].add(i)
        self.merges = []
        for new_id in range(256, vocab_size):
            if not counts:
                break
            best = min(counts, key=lambda p: (-counts[p], p))  # most frequent; ties: smallest pair
            count = counts[best]
            for i in where.pop(best):
                word, f = words[i], freqs[i]
                for pair, n in count_pairs(word).items():  # take the word's old pairs out ...
                    counts[pair] -= n * f
                    if counts[pair] == 0:
                        del counts[pair]
                words[i] = word = merge_pair(word, best, new_id)
                for pair, n in count_pairs(word).items():  # ... and its new pairs in
                    counts[pair] = counts.get(pair, 0) + n * f
                    where[pair].add(i)
            self.merges.append(best)
            if verbose:
                print(f"merge {new_id - 255}/{vocab_size - 256}: {best} -> {new_id} "
                      f"{self._bytes(new_id)!r} ({count} occurrences)")
        self._rebuild()
        return self
        ### END SOLUTION

    def encode(self, text: str) -> list[int]:
        # HINT: for each chunk: ids = list(chunk.encode("utf-8")); while len(ids) >= 2: the present
        #       pair with the lowest self.ranks.get(pair, inf); stop if it is not in self.ranks
        # HINT: cache each chunk's ids in self._cache
        ### BEGIN SOLUTION
        out: list[int] = []
        for chunk in split_chunks(text):
            ids = self._cache.get(chunk)
            if ids is None:
                ids = list(chunk.encode("utf-8"))
                while len(ids) >= 2:
                    pair = min(count_pairs(ids), key=lambda p: self.ranks.get(p, float("inf")))
                    if pair not in self.ranks:
                        break  # no present pair was ever learnt
                    ids = merge_pair(ids, pair, self.ranks[pair])
                self._cache[chunk] = ids
            out.extend(ids)
        return out
        ### END SOLUTION

    def decode(self, ids) -> str:
        # HINT: b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace");
        #       a KeyError becomes a ValueError naming the id
        ### BEGIN SOLUTION
        try:
            data = b"".join(self.vocab[i] for i in ids)
        except KeyError as e:
            raise ValueError(f"BPETokenizer.decode: id {e.args[0]} is not in the vocabulary "
                             f"(ids 0..{self.vocab_size - 1})") from None
        return data.decode("utf-8", errors="replace")
        ### END SOLUTION

    def save(self, path) -> None:
        # HINT: Path(path).write_text(json.dumps({"format": ..., "version": 1, "pattern": ...,
        #       "merges": [[a, b], ...]}), encoding="utf-8")
        ### BEGIN SOLUTION
        data = {"format": self.FORMAT, "version": 1, "pattern": SPLIT_PATTERN.pattern,
                "merges": [[a, b] for a, b in self.merges]}
        Path(path).write_text(json.dumps(data), encoding="utf-8")
        ### END SOLUTION

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        # HINT: data = json.loads(...); check data.get("format"); tok = cls(); tok.merges = [tuple(p) ...];
        #       tok._rebuild(); return tok
        ### BEGIN SOLUTION
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise ValueError(f"BPETokenizer.load: {path} is not a saved BPETokenizer "
                             f"(no \"format\": \"{cls.FORMAT}\")")
        if data.get("pattern", SPLIT_PATTERN.pattern) != SPLIT_PATTERN.pattern:
            raise ValueError(f"BPETokenizer.load: {path} was saved with a different split pattern")
        tok = cls()
        try:
            tok.merges = [(int(a), int(b)) for a, b in data["merges"]]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"BPETokenizer.load: {path} has no valid merges list ({e})") from None
        tok._rebuild()
        return tok
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


# %%
if __name__ == "__main__":
    tok = BPETokenizer().train("aaabdaaabac", 259, verbose=True)
    print(tok.merges, tok.vocab_size)
    print(tok.encode("aaabdaaabac"), tok.encode("aab"))
    print(repr(tok.decode([258, 100])), repr(tok.decode([0xC3])))

# %% nbgrader={"grade": true, "grade_id": "check-bpe-train", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "BPETokenizer.train")

# %% [markdown]
# The cell above asks for 270 tokens and gets 267: after 11 merges every chunk of that text is a
# single token, no pair is left, and training stops. Encoding replays the merges (` slower` is
# ` slow` + `e` + `r`: the text never had ` slowe`); the checks encode hand-computed cases (a pair learnt late that
# appears first in the string must wait its turn), random strings against a replay of every merge
# in training order, and characters the tokenizer never saw (they come out as their UTF-8 bytes).

# %%
if __name__ == "__main__":
    tok = BPETokenizer().train("low lower lowest slow slowly " * 20, 270)
    print([tok.decode([i]) for i in range(256, tok.vocab_size)])
    for s in [" lowest", " slower", " blow", " 😀"]:
        ids = tok.encode(s)
        print(f"{s!r:10} -> {ids} -> {[tok.decode([i]) for i in ids]}")

# %% nbgrader={"grade": true, "grade_id": "check-bpe-encode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "BPETokenizer.encode")

# %% [markdown]
# Decoding must give back exactly the string that was encoded - for every string. The check
# trains on a little English and then throws arbitrary Unicode at the round trip. Below, a string
# the `low`/`slow` tokenizer has mostly never seen: it comes out as *more* tokens than characters,
# because every unseen character is its UTF-8 bytes (the rose is four of them) - and still exactly
# round-trips.

# %%
if __name__ == "__main__":
    s = "Wherefore art thou 🌹? — ça va, 你好"
    ids = tok.encode(s)
    print(len(s), "characters ->", len(ids), "tokens; round trip exact:", tok.decode(ids) == s)

# %% nbgrader={"grade": true, "grade_id": "check-bpe-decode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "BPETokenizer.decode")

# %%
if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tok.save(Path(tmp) / "bpe.json")
        print((Path(tmp) / "bpe.json").read_text()[:120], "...")
        again = BPETokenizer.load(Path(tmp) / "bpe.json")
    print(again, again.merges == tok.merges, again.encode(" slowest") == tok.encode(" slowest"))

# %% nbgrader={"grade": true, "grade_id": "check-bpe-save-load", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("10", "BPETokenizer.load")

# %% [markdown]
# ## Vocabulary size: sequence length against table size
#
# The **compression ratio** of a tokenizer on a text is the number of tokens per character
# (lower is shorter), or its inverse, characters per token. A character tokenizer is at exactly
# 1.0; a byte-level tokenizer with no merges at bytes/character (1.0 for ASCII); every merge
# lowers it. GPT-2's 50,257 tokens give about 0.25 tokens per character on English prose, four
# characters per token. On Tiny Shakespeare, a 512-token BPE trained as above gets 0.516 tokens
# per character (`bench/bench_bpe.py`): every token is 1.94 characters on average, and a context
# of 64 tokens sees as much text as 124 characters would. Its longest tokens are whole words with
# their space: `" shall"`, `" there"`, `" would"`.
#
# What a larger vocabulary costs, with $d$ the model width, $T$ the context length, $B$ the batch:
#
# | | grows with | GPT-2 small ($V$ = 50,257, $d$ = 768) | char-GPT ($V$ = 65, $d$ = 128) | 512-token BPE, $d$ = 128 |
# |---|---|---|---|---|
# | embedding table | $V d$ parameters | 38.6 M (154 MB): 31% of the model | 8,320 (33 KB) | 65,536 (262 KB) |
# | output layer per token | $2 V d$ FLOPs | 77 MFLOP | 17 kFLOP | 131 kFLOP |
# | logits of one batch | $B T V$ floats | 412 MB at $B$ = 32, $T$ = 64 | 0.5 MB | 4.2 MB |
#
# and what it buys: shorter sequences. The transformer's blocks cost about $24 d^2$ FLOPs per
# token each ($12 d^2$ parameters, two FLOPs per parameter), so their cost falls in proportion to
# the tokens per character, and attention, $O(T^2)$ in the sequence length, falls faster than
# that. A fixed context holds more text, so the model can use longer-range structure.
#
# The balance moves with the model. In the small char-GPT of milestone 05 (4 blocks, $d$ = 128) the
# blocks dominate: the output layer is 1% of the forward FLOPs with 65 characters, 8% with a
# 512-token BPE. In GPT-2 small it is already about a third (77 of 247 MFLOP per token), and at
# its full context of 1,024 tokens the logits of a batch of 32 take 6.6 GB, thirteen times the
# weights. Very large vocabularies have a statistical price too: each rare token is seen in
# few training examples, so its embedding is poorly learnt - GPT-2's infamous `" SolidGoldMagikarp"`
# was a token frequent in the tokenizer's training data and nearly absent from the model's, and
# the model behaved erratically when it appeared. Numbers are split however the merges happened
# to fall (`" 1234"` may be `" 12"` + `"34"`, `" 1235"` `" 123"` + `"5"`), which is one reason small
# models are bad at arithmetic; Llama's tokenizer splits numbers into single digits, GPT-4's into
# groups of at most three.
#
# The cell below trains tokenizers of a few sizes on a short passage of Tiny Shakespeare and
# prints the trade: tokens per character against the size of the embedding table at $d = 128$.
# (On so little text the larger vocabularies mostly memorise the passage; on the whole corpus the
# curve is flatter - run the benchmark to see it.)

# %%
if __name__ == "__main__":
    passage = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\n"
               "Resolved. resolved.\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief enemy "
               "to the people.\n\nAll:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him, and "
               "we'll have corn at our own price.\nIs't a verdict?\n\nAll:\nNo more talking on't; let "
               "it be done: away, away!\n")
    d = 128
    chars = CharTokenizer(passage)
    print(f"characters: {len(passage)}, char vocabulary {chars.vocab_size}: 1.000 tokens/char, "
          f"table {chars.vocab_size * d:,} floats")
    for size in (256, 280, 320, 400):
        bpe = BPETokenizer().train(passage, size)
        ids = bpe.encode(passage)
        assert bpe.decode(ids) == passage
        print(f"BPE vocab {bpe.vocab_size:4d}: {len(ids) / len(passage):.3f} tokens/char, "
              f"table {bpe.vocab_size * d:,} floats")

# %% [markdown]
# ## Wrap-up
#
# You built both ends of every language model's pipeline: a character tokenizer whose vocabulary
# is the sorted set of a text's characters and whose error names the character it cannot encode,
# and a byte-level BPE tokenizer - trained by counting pairs over distinct chunks and updating only
# the chunks a merge touches, encoding by replaying its merges with a per-chunk cache, decoding by
# concatenating bytes, saved as plain JSON. Its round trip `decode(encode(s)) == s` holds for every
# string, in any script, because everything bottoms out in UTF-8 bytes.
#
# The systems lessons to keep:
#
# - **UTF-8** is 1 to 4 bytes per character; 256 byte ids cover every string, at the price of
#   longer sequences for non-Latin scripts.
# - **BPE** is greedy compression: merge the most frequent pair, repeat. The merge list, in order,
#   is the tokenizer; encoding replays it.
# - **Training cost** is in the bookkeeping: count over distinct chunks, weighted, and re-count
#   only what a merge changed - seconds instead of hours.
# - **Vocabulary size** trades sequence length (the blocks' FLOPs, attention's $T^2$, how much
#   text fits in the context) against the embedding table, the output layer's $2Vd$ FLOPs per
#   token and the $B T V$ logits.
#
# Next, module 11 turns these ids into vectors: an embedding table of `vocab_size` rows, and
# positional embeddings so that the model knows where each token stands. Run all of the module's
# checks below (the same as `tito module test 10`).

# %% nbgrader={"grade": true, "grade_id": "check-tokenization", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("10")
