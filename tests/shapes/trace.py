#!/usr/bin/env python3
"""Shape hints checked against a real run: each case imports a real model file, asks tensorlens (over
LSP, the real binary) for the file's inlay hints, then runs the model on CPU with small inputs under a
tracer that records, after each assignment of the file, the real shape of what it bound. A symbolic
hint is right when its dimensions, evaluated in the frame (`B`, `C // self.heads`), give the real
shape. Prints right / wrong / unknown; exits 1 on any wrong hint.

    tests/shapes/setup                          # once: torch (CPU use of the PyPI wheel) and einops
    tests/shapes/trace.py --binary target/debug/tensorlens --python .cache/shapes/venv/bin/python

The corpus is the oracle's (tests/bench/oracle/setup fetches it) and our own small models in
tests/shapes/models, which run as scripts.
"""
import argparse
import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench" / "oracle"))

OWN = "own models"
# Each case: a project in the oracle corpus (tests/bench/oracle/corpus.json), the file whose hints are
# checked, and the driver that runs it, with the file loaded as `module` (not through its package,
# whose other modules may need more than torch).
CASES = [
    ("vit-pytorch-1.26.14", "vit_pytorch/simple_vit.py",
     "m = module.SimpleViT(image_size=32, patch_size=8, num_classes=10, dim=64, depth=2, heads=4, mlp_dim=128)\n"
     "m(torch.randn(2, 3, 32, 32))\n"),
    ("vit-pytorch-1.26.14", "vit_pytorch/vit.py",
     "m = module.ViT(image_size=32, patch_size=8, num_classes=10, dim=64, depth=2, heads=4, mlp_dim=128)\n"
     "m(torch.randn(2, 3, 32, 32))\n"),
    # Our own small models (tests/shapes/models), each run as a script: its `__main__` block drives it.
    (OWN, "tiny_gpt.py", None),
    (OWN, "small_cnn.py", None),
]


def hints_of(binary: str, path: pathlib.Path, root: pathlib.Path) -> dict[int, tuple[str, str]]:
    """The file's shape hints by 1-based line: (target name, label)."""
    from lsp import Lsp
    server = Lsp([binary, "serve"], str(root), cwd=str(root))
    text = path.read_text()
    uri = "file://" + str(path)
    server.open(uri, text)
    lines = text.splitlines()
    hints = server.request("textDocument/inlayHint", {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": len(lines), "character": 0}}}) or []
    server.close()
    res = {}
    for h in hints:
        line, col = h["position"]["line"], h["position"]["character"]
        src = lines[line]
        start = col
        while start > 0 and (src[start - 1].isalnum() or src[start - 1] == "_"):
            start -= 1
        res[line + 1] = (src[start:col], h["label"])
    return res


def assignments(path: pathlib.Path) -> dict[int, tuple[int, str]]:
    """Single-name assignments by first line: (last line, name)."""
    res = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            res[node.lineno] = (node.end_lineno, node.targets[0].id)
    return res


def dims_of(label: str) -> list[str]:
    inner = label[label.index("[") + 1:label.rindex("]")]
    return [d.strip() for d in inner.split(",")] if inner.strip() else []


def run_case(project: str, file: str, driver: str, hints: dict, path: pathlib.Path) -> dict:
    """Runs the driver in this process (the venv's Python), tracing `path`."""
    import torch
    stmts = assignments(path)
    verdicts: dict[int, str] = {}
    current: dict[int, int] = {}  # frame id -> first line of the assignment being run
    target = str(path)

    def complete(frame, start):
        end, name = stmts[start]
        if name not in frame.f_locals:
            return
        value = frame.f_locals[name]
        if start in hints:
            _, label = hints[start]
            try:
                want = tuple(int(eval(d, frame.f_globals, dict(frame.f_locals))) for d in dims_of(label))
            except Exception as err:  # a hint whose names do not evaluate here is wrong
                want = ("unevaluable", str(err))
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else ("not a tensor",)
            verdict = "right" if want == got else f"wrong: hint {label}, real {list(got)}"
            if verdicts.get(start, "right") == "right":
                verdicts[start] = verdict
        elif isinstance(value, torch.Tensor):
            verdicts.setdefault(start, "unknown")

    def tracer(frame, event, arg):
        if frame.f_code.co_filename != target:
            return None

        def local(frame, event, arg):
            key = id(frame)
            line = frame.f_lineno
            start = current.get(key)
            if start is not None:
                end, _ = stmts[start]
                if event == "return" or not (start <= line <= end) or (event == "line" and line == start):
                    complete(frame, start)
                    current.pop(key, None)
            if event == "line" and line in stmts:
                current[key] = line
            return local
        return local(frame, event, arg)

    import importlib.util
    # Without a driver the file runs as a script, its own `__main__` block under the tracer too.
    spec = importlib.util.spec_from_file_location("__main__" if driver is None else "case_module", target)
    module = importlib.util.module_from_spec(spec)
    try:
        if driver is None:
            sys.settrace(tracer)
            spec.loader.exec_module(module)
        else:
            spec.loader.exec_module(module)
            sys.settrace(tracer)
            exec(compile(driver, "<driver>", "exec"), {"torch": torch, "module": module})
    finally:
        sys.settrace(None)
    return verdicts


def root_of(project: str) -> pathlib.Path:
    import corpus
    return ROOT / "tests" / "shapes" / "models" if project == OWN else corpus.CACHE / "corpus" / project


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(ROOT / "target" / "debug" / "tensorlens"))
    ap.add_argument("--python", help="run the cases with this Python (one with torch); default: this one")
    ap.add_argument("--case", type=int, help="(internal) run one case in this process")
    ap.add_argument("--hints", help="(internal) the case's hints, as JSON")
    args = ap.parse_args()
    import corpus
    if args.case is not None:
        project, file, driver = CASES[args.case]
        root = root_of(project)
        sys.path.insert(0, str(root))
        hints = {int(k): tuple(v) for k, v in json.loads(args.hints).items()}
        print(json.dumps(run_case(project, file, driver, hints, root / file)))
        return 0
    totals = {"right": 0, "wrong": 0, "unknown": 0}
    for idx, (project, file, driver) in enumerate(CASES):
        root = root_of(project)
        path = root / file
        if not path.exists():
            print(f"{project}/{file}: missing; run tests/bench/oracle/setup first")
            return 1
        hints = hints_of(str(pathlib.Path(args.binary).resolve()), path, root)
        out = subprocess.run([args.python or sys.executable, __file__, "--case", str(idx), "--hints",
                              json.dumps(hints)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{file}: the run failed\n{out.stderr[-2000:]}")
            return 1
        verdicts = {int(k): v for k, v in json.loads(out.stdout.splitlines()[-1]).items()}
        counts = {"right": 0, "wrong": 0, "unknown": 0}
        for line, verdict in sorted(verdicts.items()):
            kind = verdict.split(":")[0]
            counts[kind] += 1
            if kind != "right":
                print(f"  {file}:{line}: {verdict}")
        for k in totals:
            totals[k] += counts[k]
        print(f"{project}/{file}: {counts['right']} right, {counts['wrong']} wrong, {counts['unknown']} unknown "
              f"of {sum(counts.values())} tensor assignments run")
    print(f"all: {totals['right']} right, {totals['wrong']} wrong, {totals['unknown']} unknown")
    return 1 if totals["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
