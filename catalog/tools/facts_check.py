#!/usr/bin/env python3
"""Checks the curated catalog against the harvested facts, offline, from the committed files only.

    python3 catalog/tools/facts_check.py                    # fails on problems not in the baseline
    python3 catalog/tools/facts_check.py --all              # every problem, baseline or not
    python3 catalog/tools/facts_check.py --update-baseline  # rewrites catalog/audit/known-problems.txt

What it checks (catalog/README.md, "The facts check"):

- signature:   a curated signature of a Python function, class or method names the parameters the
               harvested facts of the installed package list, in their order, with the same defaults
               (a signature cut short with `...` lists a selection, in order);
- phantom:     every curated name of a system whose package is harvested exists in that package's
               facts (by name, alias or re-export), and so does every member of an equivalence group;
- attribution: a curated symbol sits in the file of the system that ships it: a Python name is owned
               by the system with the longest `python_modules` root matching it (or a part of that
               system), a C name by the system whose harvested headers declare it;
- differences: an equivalence group whose members give the same parameter (or `axis`/`dim`) different
               defaults says so in its `differences` field;
- deprecation: where the facts carry the package's own deprecation notice (`deprecated_since`), a
               curated `deprecated` text that names another version is reported (never edited here).

Every problem is one line `check<TAB>name<TAB>detail`. Problems listed in catalog/audit/known-problems.txt
(the baseline, matched on check and name) do not fail the run; names in catalog/audit/exceptions.toml
are not problems, each for the reason given there. Standard library only; runs in about a second.
"""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FACTS = ROOT / "facts"
BASELINE = ROOT / "audit" / "known-problems.txt"
EXCEPTIONS = ROOT / "audit" / "exceptions.toml"
CHECKS = ("signature", "phantom", "attribution", "differences", "deprecation")
AXIS = {"axis", "dim"}  # the same convention under two names


# ------------------------------------------------------------------------------------------------ reading

def load_catalog(root: pathlib.Path):
    systems, symbols = {}, []
    for path in sorted(root.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        system = data["system"]
        systems[system["id"]] = system
        for sym in data.get("symbols", []):
            symbols.append((system["id"], sym))
    groups = []
    for path in sorted((root / "equivalents").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for op in data.get("operation", []):
            groups.append((path.name, op))
    return systems, symbols, groups


class Facts:
    """Every harvested fact, by name and alias; which package (or C system) lists each name."""

    def __init__(self, folder: pathlib.Path):
        self.by_name: dict[str, dict] = {}
        self.package_of: dict[str, str] = {}   # name -> facts package
        self.c_system: dict[str, set] = {}     # C name -> systems whose header facts declare it
        self.python_roots: set[str] = set()    # top-level modules some harvested package lists
        self.c_systems: set[str] = set()
        reexports = []
        for path in sorted(folder.glob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                header = json.loads(fh.readline())
                for line in fh:
                    rec = json.loads(line)
                    if header.get("language") == "python":
                        self.python_roots.add(rec["name"].split(".")[0])
                    else:
                        self.c_systems.add(header.get("system"))
                    if rec.get("kind") == "reexport":
                        reexports.append(rec)
                        continue
                    for n in [rec["name"]] + rec.get("aliases", []):
                        self.by_name.setdefault(n, rec)
                        self.package_of.setdefault(n, header["package"])
                        if header.get("language") != "python":
                            self.c_system.setdefault(n, set()).add(header.get("system"))
        for rec in reexports:  # flax.linen.relu is jax.nn.relu
            target = self.by_name.get(rec["target"])
            if target is not None:
                for n in [rec["name"]] + rec.get("aliases", []):
                    self.by_name.setdefault(n, target)
                    self.package_of.setdefault(n, self.package_of[rec["target"]])

    def get(self, name: str, depth: int = 0) -> dict | None:
        """The fact of `name`; a member a class inherits (onnxruntime.InferenceSession.get_inputs is
        listed under its base Session) is found through the class's `bases`."""
        rec = self.by_name.get(name)
        if rec is not None or depth > 8 or "." not in name:
            return rec
        owner, _, member = name.rpartition(".")
        cls = self.get(owner, depth + 1)
        if cls is None or cls.get("kind") not in ("class", "enum"):
            return None
        if cls["name"] != owner:  # the class under another of its names: its members are listed there
            rec = self.by_name.get(f"{cls['name']}.{member}")
            if rec is not None:
                return rec
        for base in cls.get("bases", []):
            found = self.get(f"{base}.{member}", depth + 1)
            if found is not None:
                return found
        return None


# ------------------------------------------------------------------------------------------------ signatures

def split_top(text: str) -> list[str]:
    parts, depth, current, quote = [], 0, "", None
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def param_text(signature: str) -> str | None:
    """What is between the parentheses of `name(...)` (the first top-level pair), or None."""
    start = signature.find("(")
    if start < 0:
        return None
    depth = 0
    for i in range(start, len(signature)):
        ch = signature[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return signature[start + 1:i]
    return None


def callee(signature: str) -> str:
    return signature.split("(", 1)[0].strip()


def parse_params(signature: str):
    """[(name, default or None, keyword-only?)] of a Python signature, and whether it was cut short
    with `...`. `*args`/`**kwargs` keep their stars; `*` and `/` markers, `self` and `cls` are left out."""
    inner = param_text(signature)
    if inner is None:
        return None, False
    out, elided, kw_only = [], False, False
    for part in split_top(inner):
        if part in ("...", "…"):
            elided = True
            continue
        if part == "/":
            continue
        if part == "*" or part.startswith("*") and not part.startswith("**"):
            kw_only = True
            if part == "*":
                continue
        name, eq, default = part.partition("=")
        name = name.split(":")[0].strip()
        if not re.match(r"^\*{0,2}[A-Za-z_][A-Za-z0-9_]*$", name):
            return None, False  # not a Python parameter list (a C signature, prose)
        if name in ("self", "cls"):
            continue
        out.append((name, default.strip() if eq else None, kw_only and not name.startswith("*")))
    return out, elided


def literal(text: str | None):
    """(True, value) for a default written as a Python literal (`0.1`, `'mean'`, `(1, 2)`, `None`),
    else (False, None): a name such as `AssetTypes.URI_FOLDER` or `_math.inf` cannot be compared."""
    if text is None or text.strip() in ("...", "…"):
        return False, None  # `...`: a default the facts leave out (too long, or one overload's)
    try:
        return True, ast.literal_eval(text.strip())
    except Exception:  # noqa: BLE001 - not a literal
        return False, None


def norm_default(text: str) -> str:
    ok, value = literal(text)
    if ok and not isinstance(value, (dict, set)):
        return repr(value)
    return re.sub(r"\s+", "", text.strip()).replace('"', "'")


def is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(x in it for x in part)


def merged(overloads: list[str], base: int = 0):
    """The union of a function's @overload signatures: the positional list of overload `base`, every
    other name keyword-only, and a default wherever one overload gives one or another leaves the name
    out."""
    lists = [parse_params(o)[0] for o in overloads]
    if any(pl is None for pl in lists):
        return None
    pos = [p for p in lists[base] if not p[2]]
    seen = {p[0] for p in pos}
    out = list(pos)
    for pl in lists:
        for p in pl:
            if p[0] not in seen:
                seen.add(p[0])
                out.append((p[0], p[1], not p[0].startswith("*")))
    defaults = {}
    for pl in lists:
        for n, d, _ in pl:
            if d is not None:
                defaults.setdefault(n, d)
    everywhere = set.intersection(*({p[0] for p in pl} for pl in lists))
    return [(n, d if d is not None else defaults.get(n, None if n in everywhere else "...")) + (kw,)
            for n, d, kw in out]


def compare_signature(curated: str, fact: str | None, overloads: list[str] | None = None,
                      base: int = 0) -> str | None:
    """Why a curated signature disagrees with the harvested one (or the union of its overloads), or
    None when it agrees (or cannot be told: a fact that only takes *args/**kwargs is a wrapper hiding
    the real parameters). A default of None in the package is not compared: it often stands for a
    value decided inside (torch.std's correction)."""
    ours, elided = parse_params(curated)
    theirs = merged(overloads, base) if overloads else parse_params(fact)[0]
    if ours is None or theirs is None:
        return None
    ours = [p for p in ours if not p[0].lstrip("*").startswith("_")]
    theirs = [p for p in theirs if not p[0].lstrip("*").startswith("_")]
    if theirs and all(n.startswith("*") for n, _, _ in theirs):
        return None
    # positional parameters in their order; keyword-only ones in any order (a call names them)
    pos_ours = [n for n, _, kw in ours if not kw]
    pos_theirs = [n for n, _, kw in theirs if not kw]
    kw_ours = {n for n, _, kw in ours if kw}
    kw_theirs = {n for n, _, kw in theirs if kw}
    names_ours = [n for n, _, _ in ours]
    names_theirs = [n for n, _, _ in theirs]
    # What a curated signature lists must be right; it may leave out what a call can leave out.
    unknown = [n for n in names_ours if n not in names_theirs]
    if unknown:
        return f"{', '.join(unknown)} not among the package's parameters {names_theirs}"
    if not kw_ours <= kw_theirs | set(pos_theirs):
        return f"parameters {names_ours} differ from the package's {names_theirs}"
    if elided:
        if not is_subsequence(pos_ours, pos_theirs):
            return f"parameters {names_ours} ... are not in the order of the package's {names_theirs}"
    else:
        # positional parameters: the package's, in order, possibly without optional trailing ones
        if pos_ours != pos_theirs[:len(pos_ours)]:
            return f"positional parameters {pos_ours} differ from the package's {pos_theirs}"
        required = [n for n, d, _ in theirs if d is None and not n.startswith("*")]
        missing = [n for n in required if n not in names_ours]
        if missing:
            return f"leaves out the required {', '.join(missing)} (the package's {names_theirs})"
    real = {n: d for n, d, _ in theirs}
    for name, default, _ in ours:
        fact_default = real.get(name)
        if name.startswith("*"):
            continue
        if default is not None and fact_default is None:
            return f"{name}={default} has no default in the package"
        if default is None and literal(fact_default)[0] and not elided:
            return f"{name} has the default {fact_default} in the package"
        ours_ok, ours_value = literal(default)
        theirs_ok, theirs_value = literal(fact_default)
        if ours_ok and theirs_ok and theirs_value is not None and (type(ours_value), ours_value) != (type(theirs_value), theirs_value) and \
                not (isinstance(ours_value, (int, float)) and isinstance(theirs_value, (int, float)) and
                     not isinstance(ours_value, bool) and not isinstance(theirs_value, bool) and
                     ours_value == theirs_value):
            return f"{name}={default} is {name}={fact_default} in the package"
    return None


# ------------------------------------------------------------------------------------------------ the checks

def owner(name: str, modules: list[tuple[str, str]]) -> str | None:
    for mod, system in modules:
        if name == mod or name.startswith(mod + "."):
            return system
    return None


def version_in(text: str) -> str | None:
    m = re.search(r"\b(?:since|in|as of|from)\s+(?:[A-Za-z]+\s+)?v?(\d+\.\d+(?:\.\d+)?)\b", text)
    return m.group(1) if m else None


def run_checks(root: pathlib.Path, facts_dir: pathlib.Path, exceptions: dict) -> list[tuple[str, str, str]]:
    systems, symbols, groups = load_catalog(root)
    facts = Facts(facts_dir)
    problems: list[tuple[str, str, str]] = []
    modules = sorted(((m, sid) for sid, s in systems.items() for m in s.get("python_modules", [])),
                     key=lambda x: -len(x[0]))
    python_systems = {sid for sid, s in systems.items() if "python" in s.get("languages", [])}
    curated_names = {}
    for sid, sym in symbols:
        for n in [sym["name"]] + sym.get("aliases", []):
            curated_names[n] = (sid, sym)

    def harvested_python(name: str) -> bool:
        """Whether the package this Python name belongs to is harvested (so the facts must list it)."""
        return "." in name and name.split(".")[0] in facts.python_roots

    for sid, sym in symbols:
        name = sym["name"]
        is_python = "." in name and "::" not in name and re.match(r"^[A-Za-z_][\w.]*$", name) is not None
        fact = facts.get(name)
        # phantom names (a deprecated entry may name what the package has removed: old code still has it)
        if sym.get("deprecated"):
            pass
        elif is_python and sid in python_systems and harvested_python(name) and fact is None:
            problems.append(("phantom", name, f"{sid}: not in the harvested facts of {name.split('.')[0]}"))
        elif not is_python and "::" not in name and sid in facts.c_systems and fact is None and sym.get("kind") in (
                "function", "type", "enum", "macro", "constant"):
            problems.append(("phantom", name, f"{sid}: not in the harvested headers of {sid}"))
        # attribution
        if is_python and sid in python_systems or is_python and harvested_python(name):
            home = owner(name, modules)
            part_of = systems[sid].get("part_of")
            if home is not None and home != sid and part_of != home and \
                    systems.get(home, {}).get("part_of") != sid:
                problems.append(("attribution", name, f"listed under {sid}; the module belongs to {home}"))
        elif not is_python and name in facts.c_system:
            homes = facts.c_system[name]
            if sid not in homes and systems.get(sid, {}).get("part_of") not in homes:
                problems.append(("attribution", name, f"listed under {sid}; declared by the headers of "
                                                       f"{', '.join(sorted(homes))}"))
        # signatures
        sig = sym.get("signature")
        if is_python and fact is not None and sig and fact.get("signature") and \
                sym.get("kind") in ("function", "class", "method", "decorator") and \
                name.endswith(callee(sig).rpartition(".")[2]) and callee(sig).rpartition(".")[2]:
            # a function with @overload stubs: the curated signature may be any one of them, or the
            # union the documentation shows (torch.sum(input, dim=None, keepdim=False, *, dtype=None))
            overloads = fact.get("overloads", [])
            whys = [compare_signature(sig, real) for real in [fact["signature"]] + overloads]
            if None not in whys and len(overloads) > 1:
                whys += [compare_signature(sig, None, overloads, i) for i in range(len(overloads))]
            why = None if None in whys else whys[0]
            if why:
                problems.append(("signature", name, f"{why} ({fact['signature']})"))
        # deprecations: the package's own notice against the curated entry (report only, never edit)
        if fact is not None and fact.get("deprecated") and not sym.get("deprecated") and \
                fact.get("name") == name:
            since = fact.get("deprecated_since")
            problems.append(("deprecation", name, "the package's own notice marks it deprecated"
                             + (f" (since {since})" if since else "") + "; the curated entry does not say so"))
        if sym.get("deprecated") and fact is not None and fact.get("deprecated_since"):
            ours = version_in(sym["deprecated"])
            if ours and ours != fact["deprecated_since"]:
                problems.append(("deprecation", name, f"curated text says {ours}; the package's notice says "
                                                       f"{fact['deprecated_since']}"))

    for where, op in groups:
        label = f"group:{op['name']}"
        members = op.get("members", [])
        for m in members:
            if m not in curated_names and facts.get(m) is None:
                problems.append(("phantom", m, f"{where}: member of {label}, in neither catalog nor facts"))
        defaults: dict[str, dict[str, str]] = {}
        for m in members:
            plist = member_params(m, curated_names, facts)
            for pname, default in plist:
                key = "axis|dim" if pname in AXIS else pname
                value = comparable_default(default)
                if key not in UNCOMPARED and value is not None:
                    value = (value[0], value[1].lower()) if value[0] == "str" else value
                    defaults.setdefault(key, {})[m] = value
        differing = sorted(k for k, by in defaults.items() if len({v for v in by.values()}) > 1
                           and len({v[0] for v in by.values()}) == 1)
        if differing and not op.get("differences", "").strip():
            detail = "; ".join(f"{k}: " + ", ".join(f"{m}={v[1]!r}" for m, v in sorted(defaults[k].items()))
                               for k in differing)
            problems.append(("differences", label, f"defaults differ and no `differences` says so: {detail}"))

    out = []
    for check, name, detail in problems:
        reason = exceptions.get((check, name))
        if reason is None:
            out.append((check, name, detail))
    return sorted(set(out))


# Parameters whose defaults say nothing about what the operation computes, or differ by design.
UNCOMPARED = {"name", "dtype", "device", "out", "layout", "stream", "memory_format", "requires_grad", "pin_memory",
              "generator", "key", "seed", "verbose", "precision", "preferred_element_type", "sharding",
              "out_sharding", "copy", "order", "like", "donate_argnums", "static_argnums"}


def comparable_default(text: str | None):
    """A default as (type, value) to compare across frameworks, or None when it cannot be: absent,
    not a literal, or None (which means "decided elsewhere", not a value). Numbers compare as numbers
    and lists as tuples."""
    ok, value = literal(text)
    if not ok or value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, (list, tuple)):
        return ("sequence", tuple(value))
    if isinstance(value, str):
        return ("str", value)
    return None


def member_params(name: str, curated: dict, facts: Facts) -> list[tuple[str, str | None]]:
    """A group member's parameters with their defaults: the harvested ones, else the curated signature's."""
    fact = facts.get(name)
    if fact is not None and fact.get("params"):
        return [(p["name"], p.get("default")) for p in fact["params"] if not p["name"].startswith("*")]
    if fact is not None and fact.get("signature"):
        plist, _ = parse_params(fact["signature"])
        if plist is not None:
            return [p[:2] for p in plist if not p[0].startswith("*")]
    entry = curated.get(name)
    if entry and entry[1].get("signature"):
        plist, _ = parse_params(entry[1]["signature"])
        if plist is not None:
            return [p[:2] for p in plist if not p[0].startswith("*")]
    return []


# ------------------------------------------------------------------------------------------------ baseline

def load_exceptions(path: pathlib.Path) -> dict:
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = {}
    for item in data.get("exception", []):
        if item.get("check") not in CHECKS or not item.get("name") or not item.get("reason", "").strip():
            raise SystemExit(f"{path}: every [[exception]] needs check (one of {CHECKS}), name and reason: {item}")
        out[(item["check"], item["name"])] = item["reason"]
    return out


def load_baseline(path: pathlib.Path) -> set[tuple[str, str]]:
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        out.add((parts[0], parts[1]))
    return out


BASELINE_HEAD = """\
# Known problems of the catalog that catalog/tools/facts_check.py reports and that are not fixed yet.
# One problem a line: check<TAB>name<TAB>detail. The check fails only on problems missing here.
# Fix a problem and delete its line; regenerate with `python3 catalog/tools/facts_check.py --update-baseline`
# (which keeps the notes after a second tab-separated `# note:` column).
"""


def self_test() -> int:
    """Plants one error of each kind in a copy of the catalog and checks that each is reported (the
    check must be able to fail)."""
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "catalog"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("facts", "tools", "audit", "shapes"))
        torch = copy / "pytorch.toml"
        text = torch.read_text(encoding="utf-8")
        planted = {
            ("signature", "torch.topk"): ('signature = "torch.topk(input, k, dim=-1, largest=True,',
                                          'signature = "torch.topk(input, k, dim=-1, largest=False,'),
            ("phantom", "torch.rot91"): ('name = "torch.rot90"', 'name = "torch.rot91"'),
        }
        for (_, _), (old_text, new_text) in planted.items():
            if old_text not in text:
                print(f"self-test: cannot plant {new_text!r}: the catalog changed")
                return 1
            text = text.replace(old_text, new_text, 1)
        torch.write_text(text, encoding="utf-8")
        with open(copy / "xla.toml", "a", encoding="utf-8") as fh:
            fh.write('\n[[symbols]]\nname = "jax.stages.Lowered.as_text"\nkind = "method"\nsummary = "planted"\n'
                     'docs = "https://docs.jax.dev/en/latest/jax.stages.html"\n')
        jax = copy / "jax.toml"
        jax.write_text(jax.read_text(encoding="utf-8").replace('name = "jax.stages.Lowered.as_text"',
                                                               'name = "jax.stages.Lowered.as_text_moved"', 1),
                       encoding="utf-8")
        groups = copy / "equivalents" / "core.toml"
        groups.write_text(re.sub(r'(name = "gelu"\nmembers = \[[^\n]*\]\n)differences = "[^\n]*"\n', r"\1",
                                 groups.read_text(encoding="utf-8")), encoding="utf-8")
        found = {(c, n) for c, n, _ in run_checks(copy, FACTS, load_exceptions(EXCEPTIONS))}
    want = set(planted) | {("attribution", "jax.stages.Lowered.as_text"), ("differences", "group:gelu")}
    missed = sorted(want - found)
    for check, name in missed:
        print(f"self-test: the planted {check} problem of {name} was not reported")
    print(f"self-test: {len(want) - len(missed)} of {len(want)} planted problems reported")
    return 1 if missed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="print every problem, baseline or not")
    ap.add_argument("--update-baseline", action="store_true", help="write the current problems as the baseline")
    ap.add_argument("--catalog", default=str(ROOT), help=argparse.SUPPRESS)
    ap.add_argument("--facts", default=str(FACTS), help=argparse.SUPPRESS)
    ap.add_argument("--baseline", default=str(BASELINE), help=argparse.SUPPRESS)
    ap.add_argument("--self-test", action="store_true", help="plant one error of each kind in a copy; all must be reported")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    exceptions = load_exceptions(EXCEPTIONS)
    problems = run_checks(pathlib.Path(args.catalog), pathlib.Path(args.facts), exceptions)
    baseline_path = pathlib.Path(args.baseline)
    if args.update_baseline:
        notes = {}
        if baseline_path.exists():
            for line in baseline_path.read_text(encoding="utf-8").splitlines():
                parts = line.split("\t")
                if len(parts) >= 4 and not line.startswith("#"):
                    notes[(parts[0], parts[1])] = parts[3]
        baseline_path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{c}\t{n}\t{d}" + (f"\t{notes[(c, n)]}" if (c, n) in notes else "") for c, n, d in problems]
        baseline_path.write_text(BASELINE_HEAD + "\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(problems)} problems written to {baseline_path}")
        return 0
    known = load_baseline(baseline_path)
    new = [p for p in problems if (p[0], p[1]) not in known]
    shown = problems if args.all else new
    for check, name, detail in shown:
        print(f"{check}\t{name}\t{detail}")
    fixed = known - {(c, n) for c, n, _ in problems}
    counts = {c: sum(1 for p in problems if p[0] == c) for c in CHECKS}
    print(f"facts check: {len(problems)} problems ({', '.join(f'{c} {n}' for c, n in counts.items())}); "
          f"{len(problems) - len(new)} known in the baseline, {len(new)} new, {len(exceptions)} exceptions"
          + (f"; {len(fixed)} baseline lines no longer occur (delete them)" if fixed else ""))
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
