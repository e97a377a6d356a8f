#!/usr/bin/env python3
"""Writes a calibration jsonl at the seed's full scale: 8192 texts, {"text": ...} per line.

quantize_awq.py's default calibration file is calib_8192.jsonl, made by sample_calib_from_data.py
from the user's data (N=8192, MAX_LEN=2048). This script makes one of that size from plain-text
corpora with realistic text lengths, for the seed-scale benchmarks (docs/perf.md, "The seed's full
calibration scale"): passage lengths follow a log-normal distribution (median 700 characters,
sigma 0.8, kept between 64 and 6000 characters: short answers to long articles, mean about 1 KB,
so 8192 texts make about 8 MB), each passage a random stretch of one corpus cut at word
boundaries, whitespace runs collapsed. Deterministic for a given --seed and corpora.

    python3 bench/calib/make_seed_calibration.py --out /tmp/calib_8192.jsonl \
        wikitext2-raw-test.txt war-and-peace.txt tinyshakespeare.txt

(the whole corpora whose first 256 KiB are tests/data/corpora.tar.xz, origins in
tests/data/SOURCES.md; the slices, build/tests/data/corpora/*.head.txt, work too, with fewer
distinct passages).

The generated file is not committed (8 MB); it prints the byte and length statistics it made.
"""
import argparse
import json
import math
import random
import re
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpora", nargs="+", help="UTF-8 plain-text files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--texts", type=int, default=8192)
    parser.add_argument("--median_chars", type=float, default=700.0)
    parser.add_argument("--sigma", type=float, default=0.8)
    parser.add_argument("--min_chars", type=int, default=64)
    parser.add_argument("--max_chars", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=8192)
    args = parser.parse_args()

    corpora = []
    for path in args.corpora:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = re.sub(r"\s+", " ", f.read()).strip()
        if len(text) < args.max_chars * 2:
            print(f"{path}: too short ({len(text)} characters)", file=sys.stderr)
            return 2
        corpora.append(text)
    weights = [len(c) for c in corpora]
    rng = random.Random(args.seed)
    lengths = []
    with open(args.out, "w", encoding="utf-8") as out:
        for _ in range(args.texts):
            corpus = rng.choices(corpora, weights=weights)[0]
            n = int(rng.lognormvariate(math.log(args.median_chars), args.sigma))
            n = max(args.min_chars, min(args.max_chars, n))
            start = rng.randrange(0, len(corpus) - n - 1)
            # Start after a space and end before one: whole words.
            start = corpus.find(" ", start) + 1
            end = corpus.rfind(" ", start, start + n)
            passage = corpus[start:end if end > start else start + n].strip()
            lengths.append(len(passage.encode("utf-8")))
            out.write(json.dumps({"text": passage}, ensure_ascii=False) + "\n")
    lengths.sort()
    total = sum(lengths)
    pct = lambda p: lengths[min(len(lengths) - 1, int(p * len(lengths)))]
    print(f"{args.out}: {len(lengths)} texts, {total} bytes of text ({total / 2**20:.2f} MiB); "
          f"bytes per text mean {total / len(lengths):.0f}, p10 {pct(0.1)}, median {pct(0.5)}, "
          f"p90 {pct(0.9)}, max {lengths[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
