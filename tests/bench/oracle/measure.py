#!/usr/bin/env python3
"""How much of real code tensorlens explains, with basedpyright as the oracle.

For every identifier of every corpus file (corpus.json), basedpyright answers textDocument/definition.
Where the definition lies in a framework package, the position counts, and tensorlens's hover there is
compared with it: the same symbol (last name equal, `X.__init__` matching class `X`), another symbol
(wrong), or nothing. Framework-typed user attributes (`self.fc1` holding an `nn.Linear`) are found by
basedpyright's textDocument/typeDefinition. Where basedpyright sees user or standard-library code, a
framework answer from tensorlens is a false answer.

    tests/bench/oracle/setup                   # once: basedpyright, the frameworks, the corpus
    tests/bench/oracle/measure.py [--binary target/release/tensorlens] [--json out.json] [--misses N]
        [--min-answered 90] ...                # exit 1 when a share is below its floor
"""
import argparse
import ast
import collections
import io
import json
import pathlib
import re
import sys
import time
import tokenize
import urllib.parse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
from lsp import Lsp  # noqa: E402

ROOT = corpus.ROOT
SITE = corpus.CACHE / "site"
VENV = corpus.CACHE / "venv"
# Import roots that are frameworks the catalog covers, and the package each is reported under.
FRAMEWORKS = {"torch": "torch", "jax": "jax", "flax": "flax", "optax": "optax", "chex": "chex", "orbax": "orbax",
              "equinox": "equinox", "lightning": "lightning", "lightning_fabric": "lightning",
              "pytorch_lightning": "lightning", "tensorflow": "tensorflow", "keras": "keras"}
# Packages that re-export another's names (`flax.linen.relu` is `jax.nn.relu`).
BUILDS_ON = {"flax": "jax", "optax": "jax", "chex": "jax", "equinox": "jax", "orbax": "jax", "lightning": "torch",
             "keras": "tensorflow"}
NOT_DESCRIBED = "Not described in the tensorlens catalog yet"
KINDS = {"module", "function", "class", "method", "attribute", "constant", "decorator", "type", "enum", "macro",
         "qualifier", "builtin", "namespace", "header", "variable", "parameter"}
CATEGORIES = ["import", "value member", "keyword", "base", "decorator"]
TITLE = re.compile(r"^\*\*(?P<name>[^*]+)\*\* · (?P<kind>[^·]+?)(?: · (?P<rest>.*))?$")
KEYWORD = re.compile(r"^\*\*(?P<name>[^*]+)\*\* · parameter of (?P<callee>\S+)$")


def utf16(line: str, col: int) -> int:
    return len(line[:col].encode("utf-16-le")) // 2


# --- the corpus file: which identifier is what -------------------------------------------------------

class Roles(ast.NodeVisitor):
    """Each identifier position (line, col) of a file and its category."""

    def __init__(self) -> None:
        self.role: dict[tuple[int, int], str] = {}
        self.imported: set[str] = set()
        self.self_attr: set[tuple[int, int]] = set()

    def mark(self, node: ast.AST, role: str) -> None:
        for sub in ast.walk(node):
            for pos in positions(sub):
                self.role.setdefault(pos, role)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.imported.add((a.asname or a.name).split(".")[0])
        self.mark(node, "import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            self.imported.add(a.asname or a.name)
        self.mark(node, "import")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            self.mark(base, "base")
        for d in node.decorator_list:
            self.mark(d, "decorator")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for d in node.decorator_list:
            self.mark(d, "decorator")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is not None:
            self.role.setdefault((node.lineno, node.col_offset), "keyword")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        pos = (node.end_lineno, node.end_col_offset - len(node.attr))
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        chain = isinstance(root, ast.Name) and root.id in self.imported and dotted(node.value)
        self.role.setdefault(pos, "import" if chain else "value member")
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            self.self_attr.add(pos)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.role.setdefault((node.lineno, node.col_offset), "import")


def dotted(node: ast.AST) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def positions(node: ast.AST):
    if isinstance(node, ast.Name):
        yield (node.lineno, node.col_offset)
    elif isinstance(node, ast.Attribute):
        yield (node.end_lineno, node.end_col_offset - len(node.attr))
    elif isinstance(node, ast.alias):
        # `import a.b as c`: every dotted part and the alias are names of the import.
        line, col = node.lineno, node.col_offset
        for part in node.name.split("."):
            yield (line, col)
            col += len(part) + 1


def identifiers(text: str):
    """(line, col, name) of every NAME token that is not a keyword."""
    import keyword
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string) and tok.string != "self":
            yield tok.start[0], tok.start[1], tok.string


# --- the oracle's side: what a definition location names ---------------------------------------------

class Target:
    """A file basedpyright points into: its module path and the named scopes in it."""

    cache: dict[str, "Target"] = {}

    def __init__(self, path: pathlib.Path):
        rel = path.relative_to(package_root(path)).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        self.module = ".".join(parts)
        self.lines = path.read_text(errors="replace").splitlines()
        try:
            self.tree = ast.parse("\n".join(self.lines))
        except SyntaxError:
            self.tree = None

    @classmethod
    def of(cls, path: pathlib.Path) -> "Target":
        key = str(path)
        if key not in cls.cache:
            cls.cache[key] = Target(path)
        return cls.cache[key]

    def name_at(self, line: int, col16: int, end16: int) -> str:
        """The identifier a definition range starts with (a parameter's range holds its annotation)."""
        text = self.lines[line] if line < len(self.lines) else ""
        # ASCII in practice; the slice is in UTF-16 units.
        written = text.encode("utf-16-le")[col16 * 2:end16 * 2].decode("utf-16-le", "replace")
        m = re.match(r"[A-Za-z_]\w*", written)
        return m.group(0) if m else ""

    def qualify(self, line: int, name: str) -> tuple[str, str | None]:
        """(qualified name of what is defined at the 0-based line, the parameter name if it is one)."""
        scopes: list[str] = []
        param = None
        if self.tree is not None:
            node = self.tree
            lineno = line + 1
            while True:
                inner = None
                for child in definitions(node):
                    if child.lineno <= lineno <= (child.end_lineno or child.lineno):
                        inner = child
                        break
                if inner is None:
                    break
                body_start = inner.body[0].lineno if inner.body else (inner.end_lineno or inner.lineno) + 1
                # The header: the `def`/`class` line and a signature spread over the lines before
                # the body (a one-line `def f(x): ...` has its body on the same line).
                if lineno == inner.lineno or lineno < body_start:
                    # On the def line itself or in its parameters.
                    if inner.name == name:
                        scopes.append(inner.name)
                        return ".".join([self.module, *scopes]), None
                    if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        args = inner.args
                        every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
                        if any(a.arg == name for a in every):
                            scopes.append(inner.name)
                            return ".".join([self.module, *scopes]), name
                    break
                scopes.append(inner.name)
                node = inner
        return ".".join([self.module, *scopes, name]) if name else self.module, param


def package_root(path: pathlib.Path) -> pathlib.Path | None:
    """The folder a definition's import path starts from: the site, or a typeshed stub package
    (basedpyright bundles stubs for tensorflow, which the site does not hold)."""
    if path.is_relative_to(SITE):
        return SITE
    parts = path.parts
    if "typeshed-fallback" in parts and "stubs" in parts:
        at = parts.index("stubs")
        return pathlib.Path(*parts[:at + 2])
    return None


def definitions(node: ast.AST):
    """The classes and functions a scope defines, also under `if TYPE_CHECKING:`, `try:` and the like."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield child
        elif isinstance(child, (ast.If, ast.Try, ast.With)) or type(child).__name__ == "TryStar":
            yield from definitions(child)
        elif isinstance(child, ast.ExceptHandler):
            yield from definitions(child)


def framework_of(path: pathlib.Path) -> str | None:
    root = package_root(path)
    if root is None:
        return None
    return FRAMEWORKS.get(path.relative_to(root).parts[0].removesuffix(".py").removesuffix(".pyi"))


def location_path(loc: dict) -> pathlib.Path:
    return pathlib.Path(urllib.parse.unquote(urllib.parse.urlparse(loc.get("uri") or loc.get("targetUri")).path))


def locations(result) -> list[dict]:
    if not result:
        return []
    items = result if isinstance(result, list) else [result]
    out = []
    for item in items:
        rng = item.get("range") or item.get("targetSelectionRange")
        out.append({"uri": item.get("uri") or item.get("targetUri"), "range": rng})
    return out


# --- matching ---------------------------------------------------------------------------------------

CONSTRUCTORS = ("__init__", "__new__", "__call__")


def same_symbol(ours: str, oracle: str) -> bool:
    a, b = ours.split("."), oracle.split(".")
    pa, pb = FRAMEWORKS.get(a[0]), FRAMEWORKS.get(b[0])
    if pa != pb and BUILDS_ON.get(pa) != pb:
        return False
    if a[-1] == b[-1]:
        return True
    if b[-1] in CONSTRUCTORS and len(b) > 1 and b[-2] == a[-1]:
        return True  # `super().__init__` answered with class `X`; `nn.Linear(...)` with its `__init__`
    return a[-1] in CONSTRUCTORS and len(a) > 1 and a[-2] == b[-1]


def parse_hover(hover) -> dict | None:
    if not hover:
        return None
    contents = hover.get("contents")
    text = contents.get("value", "") if isinstance(contents, dict) else str(contents)
    first = text.splitlines()[0] if text else ""
    described = NOT_DESCRIBED not in text
    m = KEYWORD.match(first)
    if m:
        return {"kind": "keyword", "param": m["name"], "name": m["callee"], "described": described}
    m = TITLE.match(first)
    if not m:
        return None
    kind = m["kind"].strip()
    if kind not in KINDS and "." not in m["name"]:
        # A system's card (`**PyTorch** · research · ...`), shown for its root module.
        return {"kind": "card", "name": m["name"].strip(), "described": described}
    if kind in ("variable", "parameter", "attribute") and "." not in m["name"] and m["rest"]:
        # `**fc1** · attribute · torch.nn.Linear`: a value and its type (catalog entries are dotted).
        return {"kind": "value", "name": m["rest"].strip(), "described": described}
    return {"kind": "symbol", "name": m["name"].strip(), "described": described}


def type_name(label: str) -> str:
    """The class a type label names: `torch.nn.Linear`, `Iterator[torch.Tensor]` -> torch.Tensor."""
    inner = re.findall(r"[A-Za-z_][\w.]*", label)
    inner = [t for t in inner if t not in ("tuple", "Iterable", "Iterator", "list", "dict", "None")]
    return inner[0] if len(inner) == 1 else ""


# --- the run ----------------------------------------------------------------------------------------

def write_config(root: pathlib.Path) -> None:
    envs = [{"root": str(corpus.project_dir(p).relative_to(root)), "extraPaths": [str(SITE)]}
            for p in corpus.projects()]
    (root / "pyrightconfig.json").write_text(json.dumps({
        "pythonVersion": "3.11", "typeCheckingMode": "off", "extraPaths": [str(SITE)],
        "executionEnvironments": envs, "exclude": ["**"],
    }, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "tensorlens"))
    ap.add_argument("--json", help="write every position and its verdict here")
    ap.add_argument("--misses", type=int, default=0, help="print this many unanswered and wrong positions")
    ap.add_argument("--files", nargs="*", help="only these corpus files (substring match)")
    for name in ("answered", "values", "keywords", "attributes", "described", "flax", "optax"):
        ap.add_argument(f"--min-{name}", type=float, default=0.0)
    ap.add_argument("--max-false", type=float, default=100.0)
    args = ap.parse_args()

    root = corpus.CACHE / "corpus"
    write_config(root)
    oracle = Lsp([str(VENV / "bin" / "basedpyright-langserver"), "--stdio"], str(root),
                 settings={"basedpyright": {"analysis": {"typeCheckingMode": "off", "extraPaths": [str(SITE)]}}},
                 cwd=str(root))
    # Each project is a workspace folder, as a user opening it would have it (its own imports resolve).
    folders = [str(corpus.project_dir(p)) for p in corpus.projects()]
    ours = Lsp([str(pathlib.Path(args.binary).resolve()), "serve"], str(root), cwd=str(root), folders=folders)
    rows = []
    started = time.monotonic()
    files = [(p, f) for p, f in corpus.files() if not args.files or any(s in str(f) for s in args.files)]
    for project, path in files:
        text = path.read_text()
        lines = text.splitlines()
        uri = "file://" + str(path)
        oracle.open(uri, text)
        seen = ours.progress_count("tensorlens/modules/")
        ours.open(uri, text)
        settle(ours, seen)
        roles = Roles()
        roles.visit(ast.parse(text))
        for line, col, name in identifiers(text):
            role = roles.role.get((line, col))
            if role is None:
                continue  # a definition's own name, a parameter, a comprehension variable...
            pos = {"line": line - 1, "character": utf16(lines[line - 1], col)}
            doc = {"textDocument": {"uri": uri}, "position": pos}
            defs = locations(oracle.request("textDocument/definition", doc))
            row = {"file": str(path.relative_to(root)), "line": line, "col": col, "name": name, "role": role}
            framework = [d for d in defs if framework_of(location_path(d))]
            mine = parse_hover(ours.request("textDocument/hover", doc))
            if framework:
                d = framework[0]
                target = Target.of(location_path(d))
                r = d["range"]
                defined = target.name_at(r["start"]["line"], r["start"]["character"], r["end"]["character"])
                qual, param = target.qualify(r["start"]["line"], defined if defined.isidentifier() else "")
                row.update(package=framework_of(location_path(d)), oracle=qual, param=param)
                row["verdict"] = verdict(mine, qual, param, target)
                if row["verdict"] != "same" and param is None and defined.isidentifier() and defined != name \
                        and defined not in CONSTRUCTORS and role != "keyword":
                    # The checker names another identifier than the one written: it went on through
                    # an assignment (`logsigmoid = log_sigmoid`) or lost its way (`module.weight`
                    # answered with the function the value is passed to). Not comparable.
                    row["verdict"] = "renamed by the checker"
                row["described"] = bool(mine and mine["described"])
                row["ours"] = mine and mine["name"]
            elif any(location_path(x).is_relative_to(root) for x in defs):
                # User code. A framework-typed `self.x` is its own category; other answers are false.
                row["package"] = "user"
                row.update(user_position(oracle, doc, mine, (line, col) in roles.self_attr))
            elif defs:
                row["package"] = "stdlib or other"
                row["ours"] = mine and mine["name"]
                if mine and mine["kind"] == "symbol" and role == "import" and FRAMEWORKS.get(mine["name"].split(".")[0]) \
                        and mine["name"].split(".")[-1] == name:
                    # `torch.pi` is `math.pi`, re-exported: the checker follows it into the standard library.
                    row["verdict"] = "re-export"
                else:
                    row["verdict"] = "false" if mine else "silent"
            else:
                row["package"] = "unresolved"
                row["verdict"] = "unverified" if mine else "silent"
            rows.append(row)
    oracle.close()
    ours.close()
    settle_aliases(rows, pathlib.Path(args.binary).resolve())
    elapsed = time.monotonic() - started
    return report(rows, files, elapsed, args)


def settle(ours: Lsp, seen: int) -> None:
    """Waits until the server has read the workspace modules the file imports: the load runs off
    the request loop after didOpen, under a `$/progress` of its own (`seen` is how many such
    progresses there were before the open)."""
    if not ours.wait_progress("tensorlens/modules/", seen):
        print("warning: the workspace modules did not finish loading within 60 s", file=sys.stderr)


def verdict(mine: dict | None, qual: str, param: str | None, target: "Target | None" = None) -> str:
    if mine is None:
        return "missed"
    if param is not None:
        if mine["kind"] != "keyword":
            return "wrong"
        return "same" if mine["param"] == param and same_symbol(mine["name"], qual) else "wrong"
    if mine["kind"] == "keyword":
        # A dataclass field (`features: int` in flax.linen.Dense) is the keyword's definition: the
        # same when it is our parameter of the class that declares the field, or of a subclass
        # declared in the same file (`class Conv(_Conv)`).
        if same_symbol(mine["name"], qual):
            # The checker lands on the callee itself when it cannot pick one overload's parameter.
            return "same"
        owner, _, field = qual.rpartition(".")
        if mine["param"] != field:
            return "wrong"
        if same_symbol(mine["name"], owner):
            return "same"
        callee = mine["name"].rpartition(".")[2]
        base = owner.rpartition(".")[2]
        tree = target.tree if target is not None else None
        subclass = tree is not None and any(
            isinstance(n, ast.ClassDef) and n.name == callee
            and any(ast.unparse(b).rpartition(".")[2] == base for b in n.bases) for n in ast.walk(tree))
        return "same" if subclass and same_symbol(mine["name"].rpartition(".")[0] + "." + base, owner) else "wrong"
    if mine["kind"] == "value":
        return "wrong"
    if mine["kind"] == "card":
        # The card answers for a system's root module only.
        return "same" if "." not in qual else "wrong"
    return "same" if same_symbol(mine["name"], qual) else "wrong"


def settle_aliases(rows: list[dict], binary: pathlib.Path) -> None:
    """A wrong answer whose oracle name is, in the catalog, an alias of our answer (`jnp.ndarray` is
    `jax.Array`) is the same symbol."""
    import subprocess
    canonical: dict[str, str | None] = {}
    for r in rows:
        if r["verdict"] != "wrong" or not r.get("ours") or r.get("param"):
            continue
        # The checker's name, and the written name in our answer's module (`torch.clip`, which the
        # catalog knows as torch.clamp).
        written = r["ours"].rsplit(".", 1)[0] + "." + r["name"]
        for name in (r["oracle"], written):
            if name not in canonical:
                out = subprocess.run([str(binary), "catalog", "show", name], capture_output=True, text=True).stdout
                m = TITLE.match(out.splitlines()[0]) if out else None
                canonical[name] = m["name"] if m else None
            if canonical[name] == r["ours"] and same_symbol(r["ours"].rsplit(".", 1)[0] + "." + r["name"], r["oracle"]):
                r["verdict"] = "same"


def user_position(oracle: Lsp, doc: dict, mine: dict | None, self_attr: bool) -> dict:
    """A position basedpyright resolves into the user's code: a type claim of ours is checked against the
    checker's hover type and type definition; a framework symbol there is a false answer."""
    if mine is None and not self_attr:
        return {"verdict": "silent"}
    hover = oracle.request("textDocument/hover", doc)
    text = (hover or {}).get("contents", {})
    text = text.get("value", "") if isinstance(text, dict) else str(text)
    m = re.search(r"\((?:variable|parameter|property|attribute)\) [\w.]+: (.+)", text)
    checker_type = m.group(1).strip() if m else None
    named = []
    if checker_type and not re.search(r"\b(Any|Unknown)\b", checker_type):
        for t in locations(oracle.request("textDocument/typeDefinition", doc)):
            path = location_path(t)
            r = t["range"]
            if framework_of(path):
                target = Target.of(path)
                defined = target.name_at(r["start"]["line"], r["start"]["character"], r["end"]["character"])
                named.append(target.qualify(r["start"]["line"], defined)[0])
            elif path.is_file():
                # A user or standard-library class: its name, read at the definition.
                text = path.read_text(errors="replace").splitlines()
                row = text[r["start"]["line"]] if r["start"]["line"] < len(text) else ""
                m2 = re.match(r"[A-Za-z_]\w*", row[r["start"]["character"]:])
                if m2:
                    named.append(m2.group(0))
    framework = [n for n in named if FRAMEWORKS.get(n.split(".")[0])]
    out = {"oracle_type": checker_type}
    if self_attr and framework:
        out["role"] = "user attribute"
        out["package"] = FRAMEWORKS[framework[0].split(".")[0]]
        out["oracle_type"] = framework[0]
        if mine is None:
            out["verdict"] = "missed"
        else:
            ok = mine["kind"] == "value" and same_symbol(type_name(mine["name"]) or "?", framework[0])
            out["verdict"] = "same" if ok else "wrong"
            out["ours"] = mine["name"]
            out["described"] = mine["described"]
        return out
    if mine is None:
        return {"verdict": "silent"}
    out["ours"] = mine["name"]
    if mine["kind"] != "value":
        out["verdict"] = "false"  # a framework symbol where the checker sees the user's own code
    elif not named and not checker_type == "None":
        out["verdict"] = "unverified"  # the checker does not know (`Module.__call__` gives `Any`)
    else:
        ours_class = (type_name(mine["name"]) or "?").split(".")[-1]
        if checker_type == "None" and mine["name"].endswith("| None"):
            ok = True  # `x: T | None = None`, which the checker narrows to `None` right there
        elif re.match(r"(Iterable|tuple)\[", mine["name"]):
            # A container of ours: its element must be what the checker's container holds.
            if "[" not in (checker_type or "["):
                out["verdict"] = "unverified"  # a bare `list`: the checker knows nothing of the elements
                return out
            ours_names = [t.split(".")[-1] for t in re.findall(r"[A-Za-z_][\w.]*", mine["name"])
                          if t not in ("tuple", "Iterable", "None")]
            missing = [n for n in ours_names if not re.search(rf"\b{re.escape(n)}\b", checker_type or "")]
            if missing and mine["name"].startswith("tuple["):
                out["verdict"] = "unverified"  # the checker spells an element by an alias (`PRNGKey`)
                return out
            ok = not missing
        else:
            ok = any(n.split(".")[-1] == ours_class for n in named)
        out["verdict"] = "type same" if ok else "false"
    return out


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def report(rows: list[dict], files, elapsed: float, args) -> int:
    counted = [r for r in rows if (r.get("oracle") or r.get("role") == "user attribute")
               and r["verdict"] != "renamed by the checker"]
    framework = [r for r in counted if r.get("oracle")]
    lines_total = sum(len(f.read_text().splitlines()) for _, f in files)
    print(f"oracle: basedpyright 1.40.2 on {len(files)} files, {lines_total} lines, {len(rows)} identifiers "
          f"looked up, in {elapsed:.0f} s")
    print(f"{len(framework)} positions resolve into a framework package; "
          f"{len(counted) - len(framework)} user attributes hold a framework value\n")
    print(f"{'':24} {'positions':>9} {'answered':>9} {'same':>7} {'wrong':>6} {'summary':>8}")

    def line(label: str, group: list[dict]) -> dict:
        same = sum(r["verdict"] == "same" for r in group)
        wrong = sum(r["verdict"] == "wrong" for r in group)
        described = sum(r["verdict"] == "same" and r.get("described", False) for r in group)
        print(f"{label:24} {len(group):9} {share(same, len(group)):>9} {same:7} {wrong:6} {share(described, same):>8}")
        return {"positions": len(group), "same": same, "wrong": wrong, "described": described,
                "share": 100 * same / len(group) if group else 0.0,
                "described_share": 100 * described / same if same else 0.0}

    figures = {"all": line("all framework positions", framework)}
    for c in CATEGORIES:
        figures[c] = line(f"  {c}", [r for r in framework if r["role"] == c])
    figures["user attribute"] = line("user attributes (self.x)", [r for r in counted if r["role"] == "user attribute"])
    print()
    for package in sorted({r["package"] for r in counted}):
        figures[package] = line(f"  {package}", [r for r in counted if r["package"] == package])
    answers = [r for r in rows if r["verdict"] not in ("silent", "missed")]
    false = [r for r in answers if r["verdict"] == "false"]
    type_same = sum(r["verdict"] == "type same" for r in rows)
    reexports = sum(r["verdict"] == "re-export" for r in rows)
    renamed = sum(r["verdict"] == "renamed by the checker" for r in rows)
    unverified = sum(r["verdict"] == "unverified" for r in rows)
    print(f"\n{len(answers)} answers in all: {len(false)} false ({share(len(false), len(answers)).strip()}) at user or "
          f"standard-library code; {type_same} variable types confirmed by the checker, {unverified} it cannot check; {reexports} standard-library names re-exported by a framework (torch.pi); "
          f"{renamed} positions where the checker names another identifier than the one written (left out)")
    described_all = sum(r.get("described", False) for r in counted if r["verdict"] == "same")
    same_all = sum(r["verdict"] == "same" for r in counted)
    print(f"answers with our own summary: {share(described_all, same_all).strip()}")
    if args.misses:
        shown = [r for r in rows if r["verdict"] in ("missed", "wrong", "false")]
        by = collections.Counter((r["verdict"], r.get("role"), r.get("oracle") or r.get("oracle_type"), r.get("ours")) for r in shown)
        print("\nmost frequent misses, wrong and false answers:")
        for (v, role, oracle, mine), n in by.most_common(args.misses):
            print(f"  {n:4} {v:6} {role or '':15} oracle {oracle}  ours {mine}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"figures": figures, "rows": rows}, indent=1))
    floors = {"answered": figures["all"]["share"], "values": figures["value member"]["share"],
              "keywords": figures["keyword"]["share"], "attributes": figures["user attribute"]["share"],
              "described": 100 * described_all / same_all if same_all else 0.0,
              "flax": figures.get("flax", {}).get("share", 0.0), "optax": figures.get("optax", {}).get("share", 0.0)}
    failed = [f"{k} {v:.1f}% < {getattr(args, 'min_' + k)}%" for k, v in floors.items() if v < getattr(args, "min_" + k)]
    false_share = 100 * len(false) / len(answers) if answers else 0.0
    if false_share > args.max_false:
        failed.append(f"false answers {false_share:.2f}% > {args.max_false}%")
    for f in failed:
        print(f"BELOW THE FLOOR: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
