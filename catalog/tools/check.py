#!/usr/bin/env python3
"""Validates catalog/*.toml against the rules in catalog/README.md; prints every problem found.

The Rust build (server/build.rs) applies the same rules; this script exists so that catalog work can be
checked quickly without a Rust build. Exit status 1 when anything is wrong.
"""
import pathlib
import re
import sys
import tomllib

GROUPS = {"research", "production", "low-level", "edge", "usability", "cloud", "compilers", "ecosystem"}
KINDS = {"module", "function", "class", "method", "attribute", "constant", "decorator", "type", "enum",
         "macro", "qualifier", "builtin", "namespace", "header"}
LANGS = {"python", "cuda", "cpp"}
SYSTEM_KEYS = {"id", "name", "group", "maintainer", "summary", "about", "docs", "guide", "languages", "domains",
               "python_modules", "c_prefixes", "headers", "namespaces", "part_of", "related"}
SYMBOL_KEYS = {"name", "kind", "signature", "summary", "docs", "aliases", "equivalents", "deprecated",
               "replacement", "fix", "returns", "bases", "params"}
FIX_KEYS = {"kind", "template", "params", "safe", "note"}
FIX_KINDS = {"rename", "template", "none"}
PARAM_KEYS = {"name", "annotation", "default", "summary"}


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    problems: list[str] = []
    systems: dict[str, dict] = {}
    names: dict[str, str] = {}
    symbols: list[tuple[str, dict]] = []
    for path in sorted(root.glob("*.toml")):
        where = path.name
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except Exception as err:  # noqa: BLE001 - report and go on
            problems.append(f"{where}: does not parse: {err}")
            continue
        unknown_top = set(data) - {"system", "symbols"}
        if unknown_top:
            problems.append(f"{where}: unknown tables {sorted(unknown_top)}")
        system = data.get("system")
        if not isinstance(system, dict):
            problems.append(f"{where}: missing [system]")
            continue
        for key in set(system) - SYSTEM_KEYS:
            problems.append(f"{where}: unknown system field {key!r}")
        for key in ("id", "name", "group", "maintainer", "summary", "docs"):
            if not system.get(key):
                problems.append(f"{where}: system.{key} is missing or empty")
        if system.get("id") != path.stem:
            problems.append(f"{where}: system.id {system.get('id')!r} differs from the file name")
        if system.get("group") not in GROUPS:
            problems.append(f"{where}: group {system.get('group')!r} not in {sorted(GROUPS)}")
        for lang in system.get("languages", []):
            if lang not in LANGS:
                problems.append(f"{where}: language {lang!r} not in {sorted(LANGS)}")
        for key in ("docs", "guide"):
            if key in system and not str(system[key]).startswith("https://"):
                problems.append(f"{where}: system.{key} is not an https URL")
        if "\n" in system.get("summary", ""):
            problems.append(f"{where}: system.summary spans lines")
        systems[path.stem] = system
        for symbol in data.get("symbols", []):
            label = f"{where}: symbol {symbol.get('name')!r}"
            for key in set(symbol) - SYMBOL_KEYS:
                problems.append(f"{label}: unknown field {key!r}")
            for key in ("name", "kind", "summary", "docs"):
                if not symbol.get(key):
                    problems.append(f"{label}: {key} is missing or empty")
            if symbol.get("kind") not in KINDS:
                problems.append(f"{label}: kind {symbol.get('kind')!r} not in {sorted(KINDS)}")
            if not str(symbol.get("docs", "")).startswith("https://"):
                problems.append(f"{label}: docs is not an https URL")
            if "\n" in symbol.get("summary", ""):
                problems.append(f"{label}: summary spans lines")
            for param in symbol.get("params", []):
                for key in set(param) - PARAM_KEYS:
                    problems.append(f"{label}: parameter {param.get('name')!r}: unknown field {key!r}")
                if not str(param.get("name", "")).strip():
                    problems.append(f"{label}: a parameter has an empty name")
                if "\n" in param.get("summary", ""):
                    problems.append(f"{label}: the summary of parameter {param.get('name')!r} spans lines")
            if "replacement" in symbol and "deprecated" not in symbol:
                problems.append(f"{label}: replacement without deprecated")
            fix = symbol.get("fix")
            if fix is not None:
                # The Rust schema checks templates in full (schema.rs, fix_problems); these are the basics.
                if "deprecated" not in symbol:
                    problems.append(f"{label}: fix without deprecated")
                for key in set(fix) - FIX_KEYS:
                    problems.append(f"{label}: fix: unknown field {key!r}")
                if fix.get("kind") not in FIX_KINDS:
                    problems.append(f"{label}: fix kind {fix.get('kind')!r} is not one of {sorted(FIX_KINDS)}")
                if (fix.get("kind") == "template") != ("template" in fix):
                    problems.append(f"{label}: a template fix needs a template, and only it has one")
                if fix.get("kind") == "rename" and "replacement" not in symbol:
                    problems.append(f"{label}: a rename fix without replacement")
            for name in [symbol.get("name")] + list(symbol.get("aliases", [])):
                if name in names:
                    problems.append(f"{label}: name {name!r} already defined in {names[name]}")
                names[name] = where
            symbols.append((where, symbol))

    for stem, system in systems.items():
        if system.get("part_of") and system["part_of"] not in systems:
            problems.append(f"{stem}.toml: part_of {system['part_of']!r} is no system")
        for rel in system.get("related", []):
            if rel.get("system") not in systems:
                problems.append(f"{stem}.toml: related system {rel.get('system')!r} is no system")
            if not rel.get("how"):
                problems.append(f"{stem}.toml: related {rel.get('system')!r} has no 'how'")
    modules = sorted((m for s in systems.values() for m in s.get("python_modules", [])), key=len, reverse=True)
    for where, symbol in symbols:
        label = f"{where}: symbol {symbol.get('name')!r}"
        for target in symbol.get("equivalents", []):
            if target not in names:
                problems.append(f"{label}: equivalent {target!r} is not in the catalog")
        if symbol.get("replacement") and symbol["replacement"] not in names:
            problems.append(f"{label}: replacement {symbol['replacement']!r} is not in the catalog")
        name = symbol.get("name", "")
        if "." in name and not re.match(r"^[A-Za-z_]", name) is None:
            root_ok = any(name == m or name.startswith(m + ".") for m in modules)
            if not root_ok and "::" not in name:
                problems.append(f"{label}: no system owns a Python module prefix of this name")

    for line in problems:
        print(line)
    print(f"{len(systems)} systems, {len(symbols)} symbols, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
