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
import tarfile
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_PACKAGES = ["lightning", "transformers", "diffusers", "accelerate", "torchvision", "peft", "flax", "optax",
                    "deepspeed"]
# DeepSpeed ships its CUDA kernels (csrc/*.cu) in its source distribution.
SOURCE_SUFFIXES = (".py", ".cu", ".cuh", ".cpp", ".cc", ".h")


def archive_for(package: str, cache: pathlib.Path) -> pathlib.Path | None:
    """A wheel of the package, else its source distribution (some ship only that)."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = package.lower().replace("-", "_")

    def found() -> list[pathlib.Path]:
        return sorted(p for p in cache.iterdir() if p.name.lower().replace("-", "_").startswith(stem + "_")
                      or p.name.lower().startswith(stem + "-"))

    if not found():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), package],
                       check=False)
    archives = [p for p in found() if p.name.endswith((".whl", ".tar.gz"))]
    return archives[-1] if archives else None


def extract_sources(archive: pathlib.Path, into: str) -> list[pathlib.Path]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.endswith(SOURCE_SUFFIXES) and "/tests/" not in m]
            zf.extractall(into, members)
    else:
        with tarfile.open(archive) as tf:
            chosen = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(SOURCE_SUFFIXES)
                      and "/tests/" not in m.name and ".." not in m.name and not m.name.startswith("/")]
            tf.extractall(into, chosen, filter="data")
            members = [m.name for m in chosen]
    return [pathlib.Path(into) / m for m in members]


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
    parser.add_argument("--min-share", type=float, help="exit 1 when fewer call sites than this percentage resolve")
    args = parser.parse_args()
    binary = pathlib.Path(args.binary)
    if not binary.exists():
        print(f"{binary} not found: run `cargo build --release` first", file=sys.stderr)
        return 2
    counts: collections.Counter = collections.Counter()
    by_language: collections.Counter = collections.Counter()
    resolved_by_language: collections.Counter = collections.Counter()
    known: dict[str, bool] = {}
    systems: dict[str, str] = {}
    for package in args.packages:
        archive = archive_for(package, ROOT / ".cache/wheels/usage")
        if archive is None:
            print(f"{package}: nothing to download", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            members = extract_sources(archive, tmp)
            refs = explain(binary, members)
        for ref in refs:
            # Call sites: what a program calls or decorates with (launches and includes are not
            # calls, and plain references such as type annotations are counted elsewhere).
            if ref.get("role") not in ("call", "decorator"):
                continue
            if args.system and ref.get("system") != args.system:
                continue
            name = ref["name"]
            language = "python" if ref["file"].endswith(".py") else "cuda/c++"
            by_language[language] += 1
            resolved_by_language[language] += bool(ref.get("known"))
            counts[name] += 1
            known[name] = ref.get("known", False)
            systems[name] = ref.get("system", "")
        print(f"{package}: {archive.name}, {len(members)} source files", file=sys.stderr)
    total = sum(counts.values())
    resolved = sum(n for name, n in counts.items() if known[name])
    if args.json:
        json.dump([{"name": n, "count": c, "known": known[n], "system": systems[n]} for n, c in counts.most_common()],
                  sys.stdout, indent=1)
        return 0
    share = 100 * resolved / max(total, 1)
    print(f"call sites: {total}, resolved to a catalog symbol: {resolved} ({share:.1f}%)")
    for language, n in sorted(by_language.items()):
        print(f"  {language}: {resolved_by_language[language]} of {n} ({100 * resolved_by_language[language] / n:.1f}%)")
    print(f"\nmost used names the catalog does not describe yet (top {args.top}):")
    for name, n in [(n, c) for n, c in counts.most_common() if not known[n]][: args.top]:
        print(f"  {n:6d}  {name}  [{systems[name]}]")
    if args.min_share is not None and (total == 0 or share < args.min_share):
        print(f"the share of resolved call sites is below {args.min_share}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
