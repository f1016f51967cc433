"""Runs one Python program of tests/fixes in the venv and reports, as one JSON line on the last line
of stdout: whether it ran, what it printed, the deprecation warnings it raised, and whether the calls of
a rewritten expression bind to the real signatures of what they call.

usage: harness.py PROGRAM [CALL]   (CALL: the code a fix wrote in place of the deprecated call)
"""
import ast
import contextlib
import inspect
import io
import json
import runpy
import sys
import traceback
import warnings


def binds(expression: str, scope: dict) -> list[str]:
    """Each call in `expression` whose callee resolves in `scope`, bound to its signature with
    stand-ins for the arguments: "ok NAME", "error NAME: why", or "opaque NAME" (no signature)."""
    res = []
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        return [f"error: the rewrite does not parse: {err}"]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = ast.unparse(node.func)
        if callee in ("len", "print"):
            continue
        try:
            target = eval(compile(ast.Expression(node.func), "<callee>", "eval"), scope)
        except Exception as err:  # the name the fix wrote does not resolve
            res.append(f"error {callee}: does not resolve: {err!r}")
            continue
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            res.append(f"opaque {callee}")
            continue
        positional = [object() for arg in node.args if not isinstance(arg, ast.Starred)]
        keywords = {kw.arg: object() for kw in node.keywords if kw.arg is not None}
        try:
            signature.bind(*positional, **keywords)
            res.append(f"ok {callee}")
        except TypeError as err:
            res.append(f"error {callee}: {err}")
    return res


def main() -> None:
    program = sys.argv[1]
    call = sys.argv[2] if len(sys.argv) > 2 else None
    out = io.StringIO()
    report = {"ran": False, "stdout": "", "error": None, "deprecations": [], "binds": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stdout(out):
                scope = runpy.run_path(program, run_name="__main__")
            report["ran"] = True
        except BaseException:  # the original may raise because its API is gone
            report["error"] = traceback.format_exc(limit=3)
            scope = None
    report["stdout"] = out.getvalue()
    report["deprecations"] = [
        f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))
    ]
    if call is not None and scope is not None:
        report["binds"] = binds(call, scope)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
