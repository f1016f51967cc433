#!/usr/bin/env python3
"""How many CUDA built-in, runtime and driver call sites of real CUDA code tensorlens recognizes.

The oracle is lexical and knows nothing of tensorlens's parser: every identifier followed by `(` that
the catalog (`tensorlens catalog export`) lists as a function or built-in of CUDA, the CUDA Runtime or
the CUDA Driver, outside comments and strings, in macro bodies, member functions and lambdas alike. Not
counted: member calls (`x.name(`, `p->name(`), qualified calls (`ns::name(`; `::name(` counts), the
declarator of a declaration or definition (`float __expf(`), every use of a name the file defines
itself (`#define __shfl_sync ...`, a function of that name with a body), and `printf`, which is the C library's in
host code and a lexer cannot tell host code from device code. Each call site is compared with the
`call` references of `tensorlens explain --json` at the same line and column.

    tests/bench/cuda_calls/corpus.py fetch     # once: the corpus (corpus.json) into .cache/cuda_calls
    tests/bench/cuda_calls/measure.py [--binary target/debug/tensorlens] [--misses N] [--json out.json]
        [--min-recognized 95]                  # exit 1 when the recognized share is below the floor
"""
import argparse
import bisect
import collections
import json
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402

SYSTEMS = {"cuda", "cuda-runtime", "cuda-driver"}
KINDS = {"function", "builtin"}
# Names whose call sites a lexer cannot attribute: C's printf in host code, CUDA's in device code.
AMBIGUOUS = {"printf"}
# Words that may stand before a call without making it a declarator (`return __shfl_sync(...)`).
KEYWORDS = {"return", "else", "do", "case", "throw", "co_return", "co_yield", "co_await", "new", "delete",
            "sizeof", "goto", "typename", "and", "or", "not"}
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.']|)*")
RAW_STRING = re.compile(r'(?:u8|u|U|L)?R"([^ ()\\\t\n]{0,16})\(')
STRING_PREFIX = re.compile(r'(?:u8|u|U|L)?["\']')


class Token:
    __slots__ = ("text", "offset", "macro", "directive")

    def __init__(self, text: str, offset: int, macro: bool, directive: bool) -> None:
        self.text, self.offset, self.macro, self.directive = text, offset, macro, directive


def tokens(text: str) -> list[Token]:
    """Identifiers and punctuation of C++ source, without comments, strings and numbers. Tokens of a
    `#define` line (continuations included) are marked `macro`, of any directive `directive`."""
    res: list[Token] = []
    i, n = 0, len(text)
    line_start = True  # only whitespace since the last newline: a `#` starts a directive
    directive = macro = False
    while i < n:
        c = text[i]
        if c == "\\" and text.startswith("\n", i + 1):
            i += 2
            continue
        if c == "\\" and text.startswith("\r\n", i + 1):
            i += 3
            continue
        if c == "\n":
            directive = macro = False
            line_start = True
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if text.startswith("//", i):
            # To the end of the line; a backslash before it continues the comment too.
            while i < n and text[i] != "\n":
                i += 2 if text.startswith("\\\n", i) else 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c == "#" and line_start:
            directive = True
            j = i + 1
            while j < n and text[j] in " \t":
                j += 1
            m = IDENT.match(text, j)
            macro = bool(m and m.group() == "define")
            line_start = False
            i += 1
            continue
        line_start = False
        m = RAW_STRING.match(text, i)
        if m:
            end = text.find(f"){m.group(1)}\"", m.end())
            i = n if end < 0 else end + len(m.group(1)) + 2
            continue
        m = STRING_PREFIX.match(text, i)
        if m:
            quote = text[m.end() - 1]
            j = m.end()
            while j < n and text[j] != quote and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        m = IDENT.match(text, i)
        if m:
            res.append(Token(m.group(), i, macro, directive))
            i = m.end()
            continue
        m = NUMBER.match(text, i)
        if m:
            i = m.end()
            continue
        two = text[i:i + 2]
        if two in ("::", "->"):
            res.append(Token(two, i, macro, directive))
            i += 2
            continue
        res.append(Token(c, i, macro, directive))
        i += 1
    return res


class Frame:
    """One open brace: what opened it."""
    __slots__ = ("kind", "device", "template")

    def __init__(self, kind: str, device: bool, template: bool) -> None:
        self.kind, self.device, self.template = kind, device, template


def classify_brace(head: list[str], stack: list[Frame]) -> Frame:
    """What a `{` opens, from the tokens since the last `;`, `{` or `}` at the same depth."""
    device = "__device__" in head or "__global__" in head
    template = "template" in head
    if any(w in head for w in ("struct", "class", "union")) and "(" not in head:
        return Frame("struct", device, template)
    if "namespace" in head or head[:1] == ["extern"]:
        return Frame("namespace", False, False)
    if "enum" in head:
        return Frame("block", False, False)
    for k, word in enumerate(head):
        if word == "[" and (k == 0 or head[k - 1] in ("=", "(", ",", "return", "{", ";")) and ")" in head[k:]:
            return Frame("lambda", device, template)
    inside_function = any(f.kind in ("function", "lambda") for f in stack)
    if ")" in head and not inside_function:
        return Frame("function", device, template)
    return Frame("block", device, template)


def pattern(frames: list[Frame], macro: bool) -> str:
    """The shape of code a call site sits in, for listing misses."""
    if macro:
        return "macro body"
    device = any(f.device for f in frames)
    template = any(f.template for f in frames)
    where = "top level"
    for k in range(len(frames) - 1, -1, -1):
        f = frames[k]
        if f.kind == "lambda":
            where = "lambda"
            break
        if f.kind == "function":
            member = k > 0 and frames[k - 1].kind == "struct"
            where = "member function" if member else "function"
            break
    if where == "top level" and any(f.kind == "struct" for f in frames):
        where = "struct"
    tags = [t for t, on in (("device", device), ("template", template)) if on]
    return where + (f" ({', '.join(tags)})" if tags else "")


def has_body(toks: list[Token], open_paren: int) -> bool:
    """Whether the parameter list opening at `open_paren` is followed by a function body."""
    depth = 0
    for k in range(open_paren, len(toks)):
        depth += {"(": 1, ")": -1}.get(toks[k].text, 0)
        if depth == 0:
            # `) const noexcept {`, `) -> T {`: a few words may stand between.
            for t in toks[k + 1:k + 10]:
                if t.text in ("{", ";", "=", ","):
                    return t.text == "{"
            return False
    return False


def call_sites(text: str, names: set[str]) -> list[tuple[int, str, str]]:
    """(offset, name, pattern) of every counted call site in a file."""
    toks = tokens(text)
    defined: set[str] = set()
    candidates: list[tuple[int, str, str]] = []
    stack: list[Frame] = []
    head: list[str] = []
    for k, t in enumerate(toks):
        prev = toks[k - 1] if k else None
        if t.macro and prev is not None and prev.text == "define" and prev.macro and t.text in names:
            defined.add(t.text)
            continue
        if not t.directive:
            if t.text == "{":
                stack.append(classify_brace(head, stack))
                head = []
                continue
            if t.text == "}":
                if stack:
                    stack.pop()
                head = []
                continue
            if t.text == ";":
                head = []
                continue
            head.append(t.text)
        if t.text not in names or k + 1 >= len(toks) or toks[k + 1].text != "(":
            continue
        if prev is not None and prev.directive == t.directive:
            if prev.text in (".", "->"):
                continue
            if prev.text == "::":
                before = toks[k - 2] if k >= 2 else None
                if before is not None and (IDENT.fullmatch(before.text) or before.text == ">"):
                    continue
            elif t.macro and k >= 2 and toks[k - 2].text == "define":
                pass  # `#define HALF_MAX __float2half(...)`: the body starts after the macro's name
            elif IDENT.fullmatch(prev.text) and prev.text not in KEYWORDS:
                # `float __expf(float x)`: a declarator; with a body, the file's own function.
                if has_body(toks, k + 1):
                    defined.add(t.text)
                continue
        candidates.append((t.offset, t.text, pattern(stack, t.macro)))
    return [c for c in candidates if c[1] not in defined]


def catalog_names(binary: str) -> set[str]:
    out = subprocess.run([binary, "catalog", "export"], check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        entry = json.loads(line)
        if entry.get("system") in SYSTEMS and entry.get("kind") in KINDS and IDENT.fullmatch(entry["name"]):
            names.add(entry["name"])
    return names - AMBIGUOUS


def recognized(binary: str, paths: list[pathlib.Path]) -> dict[str, set[tuple[int, int, str]]]:
    """(line, column, name) of every call tensorlens recognizes, per file."""
    res: dict[str, set[tuple[int, int, str]]] = collections.defaultdict(set)
    for start in range(0, len(paths), 100):
        batch = [str(p) for p in paths[start:start + 100]]
        out = subprocess.run([binary, "explain", "--json", *batch], capture_output=True, text=True).stdout
        for line in out.splitlines():
            ref = json.loads(line)
            if ref.get("role") == "call":
                res[ref["file"]].add((ref["line"], ref["column"], ref["name"]))
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(corpus.ROOT / "target" / "debug" / "tensorlens"))
    parser.add_argument("--misses", type=int, default=0, help="print this many missed call sites per pattern")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--min-recognized", type=float, default=0.0, help="exit 1 below this share (percent)")
    args = parser.parse_args()

    files = corpus.files()
    if not files:
        sys.exit("cuda_calls: no corpus; run tests/bench/cuda_calls/corpus.py fetch")
    names = catalog_names(args.binary)
    found = recognized(args.binary, [path for _, path in files])
    per_project: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    by_pattern: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    missed_names: collections.Counter = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    extra: collections.Counter = collections.Counter()
    for project, path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        got = found.get(str(path), set())
        expected = set()
        for offset, name, shape in call_sites(text, names):
            line = bisect.bisect_right(line_starts, offset) - 1
            key = (line + 1, offset - line_starts[line] + 1, name)
            expected.add(key)
            hit = key in got
            label = f"{project['package']} {project['version']}"
            per_project[label][0 if hit else 1] += 1
            by_pattern[shape][0 if hit else 1] += 1
            if not hit:
                missed_names[name] += 1
                if len(examples[shape]) < args.misses:
                    rel = path.relative_to(corpus.project_dir(project))
                    examples[shape].append(f"{project['package']}/{rel}:{key[0]}:{key[1]} {name}")
        # Calls recognized that the oracle does not count: a lead for false answers.
        extra.update(name for (_, _, name) in got - expected if name in names)

    hits = sum(h for h, _ in per_project.values())
    total = hits + sum(m for _, m in per_project.values())
    share = 100.0 * hits / total if total else 0.0
    print(f"CUDA call sites: {total} in {len(files)} files; recognized {hits} ({share:.1f}%), missed {total - hits}")
    for label, (h, m) in sorted(per_project.items()):
        print(f"  {label:<28} {h:>6} of {h + m:<6} {100.0 * h / (h + m):5.1f}%")
    print("by pattern (recognized of total, missed):")
    for shape, (h, m) in sorted(by_pattern.items(), key=lambda kv: -kv[1][1]):
        print(f"  {shape:<36} {h:>6} of {h + m:<6} missed {m}")
        for example in examples.get(shape, []):
            print(f"      {example}")
    if missed_names:
        print("missed names: " + ", ".join(f"{n} {c}" for n, c in missed_names.most_common(15)))
    if extra:
        print("recognized beyond the oracle: " + ", ".join(f"{n} {c}" for n, c in extra.most_common(15)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({
            "total": total, "recognized": hits, "share": share,
            "projects": {k: {"recognized": h, "missed": m} for k, (h, m) in per_project.items()},
            "patterns": {k: {"recognized": h, "missed": m} for k, (h, m) in by_pattern.items()},
            "missed_names": dict(missed_names), "beyond_oracle": dict(extra),
        }, indent=1))
    if share < args.min_recognized:
        print(f"cuda_calls: recognized {share:.1f}% is below the floor {args.min_recognized}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
