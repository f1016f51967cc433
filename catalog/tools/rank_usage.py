#!/usr/bin/env python3
"""Ranks framework symbols by how often real code uses them, to decide what to curate first.

Runs `tensorlens explain --json` over the Python (and CUDA/C++) sources inside wheels of widely used
projects and counts call sites per qualified name, split into names the catalog describes and names
it does not know yet. Also reports the share of call sites that resolve to a catalog symbol.

    python3 catalog/tools/rank_usage.py [--packages lightning transformers ...] [--top 50] [--system pytorch]

Wheels are downloaded once into .cache/wheels/usage (git-ignored).
"""
import argparse
import collections
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_PACKAGES = ["lightning", "transformers", "diffusers", "accelerate", "torchvision", "timm", "flax", "optax"]
SOURCE_SUFFIXES = (".py", ".cu", ".cuh")


def wheel_for(package: str, cache: pathlib.Path) -> pathlib.Path | None:
    cache.mkdir(parents=True, exist_ok=True)
    stem = package.lower().replace("-", "_")
    found = [p for p in cache.iterdir() if p.name.lower().startswith(stem + "-") and p.suffix == ".whl"]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                        "-d", str(cache), package], check=False)
        found = [p for p in cache.iterdir() if p.name.lower().startswith(stem + "-") and p.suffix == ".whl"]
    return sorted(found)[-1] if found else None


def explain(binary: pathlib.Path, files: list[pathlib.Path]) -> list[dict]:
    res = []
    for start in range(0, len(files), 200):
        out = subprocess.run([str(binary), "explain", "--json", *map(str, files[start:start + 200])],
                             capture_output=True, text=True)
        res.extend(json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="*", default=DEFAULT_PACKAGES)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--system", help="only names of this system (display name, e.g. PyTorch)")
    parser.add_argument("--binary", default=str(ROOT / "target/release/tensorlens"))
    parser.add_argument("--json", action="store_true", help="print the full counts as JSON")
    args = parser.parse_args()
    binary = pathlib.Path(args.binary)
    if not binary.exists():
        print(f"{binary} not found: run `cargo build --release` first", file=sys.stderr)
        return 2
    counts: collections.Counter = collections.Counter()
    known: dict[str, bool] = {}
    systems: dict[str, str] = {}
    for package in args.packages:
        wheel = wheel_for(package, ROOT / ".cache/wheels/usage")
        if wheel is None:
            print(f"{package}: no wheel", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.endswith(SOURCE_SUFFIXES) and "/tests/" not in m]
            archive.extractall(tmp, members)
            refs = explain(binary, [pathlib.Path(tmp) / m for m in members])
        for ref in refs:
            if ref.get("role") not in ("call", "decorator", "reference", "type"):
                continue
            if args.system and ref.get("system") != args.system:
                continue
            name = ref["name"]
            counts[name] += 1
            known[name] = ref.get("known", False)
            systems[name] = ref.get("system", "")
        print(f"{package}: {wheel.name}, {len(members)} source files", file=sys.stderr)
    total = sum(counts.values())
    resolved = sum(n for name, n in counts.items() if known[name])
    if args.json:
        json.dump([{"name": n, "count": c, "known": known[n], "system": systems[n]} for n, c in counts.most_common()],
                  sys.stdout, indent=1)
        return 0
    print(f"call sites: {total}, resolved to a catalog symbol: {resolved} ({100 * resolved / max(total, 1):.1f}%)")
    print(f"\nmost used names the catalog does not describe yet (top {args.top}):")
    for name, n in [(n, c) for n, c in counts.most_common() if not known[n]][: args.top]:
        print(f"  {n:6d}  {name}  [{systems[name]}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
