#!/usr/bin/env python3
"""Draws the audit sample: random curated summaries and signatures, with a fixed seed.

    python3 catalog/audit/sample.py [--seed 20261207] [--summaries 150] [--signatures 150]

Prints one JSON object a line: {"name", "kind": "summary"|"signature", "system", "text"}, and for a
signature the harvested one of the same name when the facts have it ("fact"). Each item is then read
against the real package (its docstring and source, `inspect.signature` in a venv with the package at
the facts' version, or its header) and the verdict written to catalog/audit/sample-<date>.jsonl as
{"name", "kind", "verdict": "right"|"wrong", "why"}. The draw depends only on the seed and on the set of
curated names, so the same seed over the same catalog gives the same items.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import facts_check  # noqa: E402  (the same facts reader as the CI check)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--summaries", type=int, default=150)
    ap.add_argument("--signatures", type=int, default=150)
    args = ap.parse_args(argv)
    symbols = []
    for path in sorted(ROOT.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for sym in data.get("symbols", []):
            symbols.append((data["system"]["id"], sym))
    symbols.sort(key=lambda s: s[1]["name"])
    facts = facts_check.Facts(facts_check.FACTS)
    rng = random.Random(args.seed)
    with_summary = [s for s in symbols if s[1].get("summary")]
    with_signature = [s for s in symbols if s[1].get("signature") and "(" in s[1]["signature"]]
    out = []
    for sid, sym in rng.sample(with_summary, min(args.summaries, len(with_summary))):
        out.append({"name": sym["name"], "kind": "summary", "system": sid, "text": sym["summary"]})
    for sid, sym in rng.sample(with_signature, min(args.signatures, len(with_signature))):
        item = {"name": sym["name"], "kind": "signature", "system": sid, "text": sym["signature"]}
        fact = facts.get(sym["name"])
        if fact is not None and fact.get("signature"):
            item["fact"] = fact["signature"]
        out.append(item)
    for item in out:
        print(json.dumps(item, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
