"""Train a byte-level BPE tokenizer on Tiny Shakespeare and report its cost and its compression.

    python bench/bench_bpe.py                        # 512 tokens on the whole of Tiny Shakespeare
    python bench/bench_bpe.py --vocab-size 1024
    python bench/bench_bpe.py --chars 100000         # only the first 100,000 characters
    python bench/bench_bpe.py --json out.json        # the numbers, for scripts

It times `BPETokenizer.train` (the reference, module 10) and `encode` of the whole text, checks
that `decode(encode(text)) == text`, and prints the tokens per character (the compression ratio:
1.0 for the character tokenizer; lower is shorter), next to the character and byte baselines and
the size of the embedding table each vocabulary needs at width 128.

The text is read with tinytorch.datasets.load_shakespeare ($TINYTORCH_DATA/tinyshakespeare/
input.txt; on the development machines ../shared/datasets is used when TINYTORCH_DATA is unset).
Timings are wall-clock seconds of one run; on a shared machine they vary with its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if "TINYTORCH_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["TINYTORCH_DATA"] = str(_SHARED)

import tinytorch_reference  # noqa: E402

tinytorch_reference.activate()  # the reference framework is `tinytorch` here

from tinytorch.datasets import DatasetError, load_shakespeare  # noqa: E402
from tinytorch.tokenization import BPETokenizer, CharTokenizer, split_chunks  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-size", type=int, default=512, help="BPE vocabulary size (default 512)")
    ap.add_argument("--chars", type=int, default=None, help="use only the first N characters")
    ap.add_argument("--width", type=int, default=128, help="model width d for the table sizes")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)

    try:
        text = load_shakespeare()
    except DatasetError as e:
        print(f"bench_bpe: no Tiny Shakespeare: {e}", file=sys.stderr)
        return 1
    if args.chars is not None:
        text = text[:args.chars]
    n_chars, n_bytes = len(text), len(text.encode("utf-8"))
    chunks = split_chunks(text)

    start = time.perf_counter()
    tok = BPETokenizer().train(text, args.vocab_size)
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    ids = tok.encode(text)
    encode_s = time.perf_counter() - start

    start = time.perf_counter()
    exact = tok.decode(ids) == text
    decode_s = time.perf_counter() - start

    chars = CharTokenizer(text)
    d = args.width
    tokens_per_char = len(ids) / n_chars
    print(f"Tiny Shakespeare: {n_chars:,} characters, {n_bytes:,} bytes, {len(chunks):,} chunks "
          f"({len(set(chunks)):,} distinct)")
    print(f"BPE vocab_size {tok.vocab_size} ({len(tok.merges)} merges)")
    print(f"  train   {train_s:7.2f} s")
    print(f"  encode  {encode_s:7.2f} s  ({encode_s / n_chars * 1e6:.2f} us per character)")
    print(f"  decode  {decode_s:7.2f} s  round trip exact: {exact}")
    print(f"  tokens  {len(ids):,}: {tokens_per_char:.4f} tokens per character "
          f"({1 / tokens_per_char:.2f} characters per token)")
    print(f"baselines: characters {chars.vocab_size} ids, 1.0000 tokens/char; bytes 256 ids, "
          f"{n_bytes / n_chars:.4f} tokens/char")
    print(f"embedding table at d={d}: chars {chars.vocab_size * d:,}, bytes {256 * d:,}, "
          f"BPE {tok.vocab_size * d:,} parameters")
    longest = sorted(range(256, tok.vocab_size), key=lambda i: -len(tok.vocab[i]))[:8]
    print("longest tokens:", ", ".join(repr(tok.vocab[i].decode("utf-8", "replace")) for i in longest))

    if args.json is not None:
        args.json.write_text(json.dumps({
            "chars": n_chars, "bytes": n_bytes, "vocab_size": tok.vocab_size, "merges": len(tok.merges),
            "train_s": train_s, "encode_s": encode_s, "decode_s": decode_s, "tokens": len(ids),
            "tokens_per_char": tokens_per_char, "round_trip_exact": exact,
            "char_vocab_size": chars.vocab_size}, indent=1) + "\n", encoding="utf-8")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
