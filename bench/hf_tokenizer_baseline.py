#!/usr/bin/env python3
"""Encode throughput of the Hugging Face `tokenizers` library on the same text as
bench/bench_tokenizer.cpp, for a side-by-side number (run where `tokenizers` is installed).

The text: every "text" of golden/tokenizer/cases.jsonl followed by "\\n", that block repeated
until it reaches 4 MiB (bytes of UTF-8), encoded as one string with add_special_tokens=False.
The tokenizer is ../shared/stepaudio2-mini/tokenizer.json.gz (gunzipped in memory).

Usage: bench/hf_tokenizer_baseline.py [--shared DIR] [--repeat N] [--check-ids FILE]
Prints one line: "hf_tokenizers encode: X.XX MB/s (N ids, best of R runs, T threads)".
"""
import argparse
import gzip
import json
import os
import sys
import time


def build_corpus(shared):
    path = os.path.join(shared, "golden", "tokenizer", "cases.jsonl")
    block = ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                block += json.loads(line)["text"] + "\n"
    block_bytes = block.encode("utf-8")
    text, size = "", 0
    while size < (4 << 20):
        text += block
        size += len(block_bytes)
    return text, size


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--check-ids", help="optional JSON file with the ids the C++ tokenizer produced")
    args = ap.parse_args()
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("hf_tokenizers encode: skipped (the tokenizers package is not installed)")
        return 0
    with gzip.open(os.path.join(args.shared, "stepaudio2-mini", "tokenizer.json.gz"), "rb") as f:
        tok = Tokenizer.from_str(f.read().decode("utf-8"))
    text, size = build_corpus(args.shared)
    tok.encode(text[:10000], add_special_tokens=False)  # warm up
    best, ids = float("inf"), None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        enc = tok.encode(text, add_special_tokens=False)
        best = min(best, time.perf_counter() - t0)
        ids = enc.ids
    threads = os.environ.get("RAYON_NUM_THREADS", "default")
    print(f"hf_tokenizers encode: {size / best / 1e6:.2f} MB/s ({len(ids)} ids, best of "
          f"{args.repeat} runs, {threads} threads)")
    if args.check_ids:
        with open(args.check_ids) as f:
            want = json.load(f)
        if want != ids:
            print("hf_tokenizers encode: ids DIFFER from", args.check_ids)
            return 1
        print("hf_tokenizers encode: ids identical to", args.check_ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
