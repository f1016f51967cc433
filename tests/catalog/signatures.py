#!/usr/bin/env python3
"""Checks catalog signatures against the real installed packages.

For a sample of the catalog's functions, classes and methods from packages that install quickly here,
imports the package (in a venv under .cache/sigcheck, at the version the facts were harvested from),
reads `inspect.signature` and compares the parameter names, in order, with the catalog's signature.
A signature written with `...` only has to match up to the `...`. Exits 1 when fewer than 95% match.

    python3 tests/catalog/signatures.py target/debug/tensorlens
"""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache/sigcheck"
# PyPI distribution -> catalog system id. Chosen because they install in seconds and import without a GPU.
PACKAGES = {"huggingface_hub": "huggingface-hub", "onnx": "onnx", "openai": "openai", "transformers": "transformers"}
PER_PACKAGE = 120
THRESHOLD = 0.95

PROBE = r'''
import importlib, inspect, json, sys
res = {}
for name in json.load(sys.stdin):
    parts = name.split(".")
    obj = None
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except Exception:
            obj = None
        break
    if obj is None:
        res[name] = None
        continue
    try:
        sig = inspect.signature(obj)
    except Exception:
        res[name] = "unavailable"
        continue
    res[name] = [p.name for p in sig.parameters.values() if p.name not in ("self", "cls")]
json.dump(res, sys.stdout)
'''


def callee(signature: str) -> str:
    """The name a signature is written for: `AutoConfig.from_pretrained` in `AutoConfig.from_pretrained(x)`."""
    return signature.split("(", 1)[0].strip()


def params(signature: str) -> tuple[list[str], bool]:
    """Parameter names of `name(a, b=1, *, c)` and whether the list was cut short with `...`."""
    start = signature.find("(")
    if start < 0:
        return [], False
    depth, current, parts = 0, "", []
    for ch in signature[start + 1:]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    names, elided = [], False
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if part == "...":
            elided = True
            break
        if part in ("*", "/"):
            continue
        name = part.split("=")[0].split(":")[0].strip().lstrip("*")
        if name not in ("self", "cls"):
            names.append(name)
    return names, elided


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(name in it for name in part)


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/tensorlens")
    export = subprocess.run([binary, "catalog", "export"], capture_output=True, text=True, check=True).stdout
    symbols = [json.loads(line) for line in export.splitlines()]
    versions: dict[str, str] = {}
    for s in symbols:
        if s.get("source"):
            package, _, version = s["source"].partition(" ")
            versions[package.replace("-", "_")] = version
    if not VENV.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    python = str(VENV / "bin/python")
    wanted = [f"{p}=={versions[p]}" if p in versions else p for p in PACKAGES]
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted], check=True)

    checked = matched = 0
    failures: list[str] = []
    for package, system in PACKAGES.items():
        # Signatures written for another callee (a class documented by its `from_pretrained`) are
        # not the class's own and are left out.
        pool = [s for s in symbols if s["system"] == system and s.get("signature")
                and s["kind"] in ("function", "class", "method") and "(" in s["signature"]
                and s["name"].endswith(callee(s["signature"]).rsplit(".", 1)[-1])]
        # Curated entries first (our hand-written signatures drift most), then an even spread of facts.
        curated = [s for s in pool if s["curated"]]
        facts = [s for s in pool if not s["curated"]]
        step = max(1, len(facts) // max(1, PER_PACKAGE - len(curated[:PER_PACKAGE // 2])))
        sample = curated[:PER_PACKAGE // 2] + facts[::step]
        sample = sample[:PER_PACKAGE]
        probe = subprocess.run([python, "-c", PROBE], input=json.dumps([s["name"] for s in sample]),
                               capture_output=True, text=True)
        if probe.returncode != 0:
            print(f"{package}: the probe failed:\n{probe.stderr[-2000:]}")
            return 1
        real = json.loads(probe.stdout)
        n_checked = n_matched = 0
        for s in sample:
            actual = real.get(s["name"])
            if actual is None or actual == "unavailable" or actual == ["args", "kwargs"]:
                # Not importable under that path, a builtin without a signature, or a wrapper that
                # hides the real one (transformers replaces torch classes by stubs when torch is absent).
                continue
            # Private parameters (`_hot_reload`) are left out of the catalog on purpose. A signature
            # cut short with `...` may list a selection of the parameters, in their order.
            actual = [name for name in actual if not name.startswith("_")]
            ours, elided = params(s["signature"])
            ours = [name for name in ours if not name.startswith("_")]
            ok = is_subsequence(ours, actual) if elided else actual == ours
            n_checked += 1
            n_matched += ok
            if not ok:
                failures.append(f"{s['name']}: catalog {ours}{' ...' if elided else ''} vs installed {actual}")
        print(f"{package} {versions.get(package, '?')}: {n_matched}/{n_checked} signatures match")
        checked += n_checked
        matched += n_matched
    for line in failures[:40]:
        print("  mismatch:", line)
    rate = matched / max(checked, 1)
    print(f"signatures: {matched} of {checked} match ({100 * rate:.1f}%, need {100 * THRESHOLD:.0f}%)")
    return 0 if checked >= 100 and rate >= THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main())
