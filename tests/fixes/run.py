"""Every deprecation fix of the catalog proven by running it.

For each case of cases.toml: the real binary (`tensorlens serve`) opens the original file over LSP,
answers a code action at the deprecated call, and the returned edit is applied. The file is then
sent back as changed: no diagnostic of the deprecated name may remain outside import lines. Then
  - Python runs before and after in the venv of tests/fixes/setup and must print the same, with no
    deprecation warning of the old name after; when the installed package no longer has the old name
    (`old = "absent"`) the original must fail and the rewrite run; the rewritten call is bound to the
    real signature of what it calls (inspect.signature); a package that cannot run here (`run = "bind"`,
    CuPy without a GPU) is imported, and both the original and the rewritten call bound;
  - CUDA device code compiles before and after with CUDA 12's NVRTC (where the legacy intrinsics still
    exist) to the same PTX once the mask is set aside, and the rewrite compiles with CUDA 13's NVRTC;
  - host code compiles before and after with the C++ compiler against the real headers, the rewrite
    without deprecation warnings, against CUDA 13's headers too where they have the name.
It also checks that every fix in the catalog has a case, that a fix is offered only where the catalog
has one, and that every catalogued deprecation still gets its diagnostic.

usage: run.py BINARY CUDA13_TOOLKIT   (TENSORLENS_FIXES_ONLY=a.py,b.cu runs only those cases)
"""
import concurrent.futures
import ctypes
import glob
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.path.join(ROOT, ".cache", "fixes")
PYTHON = os.path.join(CACHE, "venv", "bin", "python")
HARNESS = os.path.join(os.path.dirname(__file__), "harness.py")


class Lsp:
    """A small LSP client over stdio that keeps the notifications it gets."""

    def __init__(self, binary: str, root: str):
        self.proc = subprocess.Popen([binary, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.replies: dict[int, queue.Queue] = {}
        self.notifications: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.request("initialize", {"processId": None, "rootUri": "file://" + root,
                                    "capabilities": {"general": {"positionEncodings": ["utf-16"]}}})
        self.notify("initialized", {})

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        with self.lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(out.read(length))
            if "id" in message and "method" in message:
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "id" in message:
                q = self.replies.get(message["id"])
                if q is not None:
                    q.put(message)
            else:
                self.notifications.put(message)

    def request(self, method: str, params: dict, timeout: float = 60):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        q: queue.Queue = queue.Queue()
        self.replies[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        reply = q.get(timeout=timeout)
        del self.replies[rid]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def notify(self, method: str, params: dict) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self, uri: str, version: int, timeout: float = 30) -> list[dict]:
        """The diagnostics published for this version of the document."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                message = self.notifications.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            params = message.get("params", {})
            if (message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri
                    and params.get("version") == version):
                return params["diagnostics"]
        raise RuntimeError(f"no diagnostics for {uri} version {version}")

    def close(self) -> None:
        try:
            self.request("shutdown", {}, timeout=10)
            self.notify("exit", {})
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


def language_of(path: str) -> str:
    return {"py": "python", "cu": "cuda", "cuh": "cuda"}.get(path.rsplit(".", 1)[-1], "cpp")


def position(text: str, offset: int) -> dict:
    line = text.count("\n", 0, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return {"line": line, "character": len(text[offset - column:offset].encode("utf-16-le")) // 2}


def offset_of(text: str, pos: dict) -> int:
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[:pos["line"]])
    line = lines[pos["line"]] if pos["line"] < len(lines) else ""
    units, idx = 0, 0
    while idx < len(line) and units < pos["character"]:
        units += len(line[idx].encode("utf-16-le")) // 2
        idx += 1
    return start + idx


def apply(text: str, edits: list[dict]) -> str:
    spans = sorted(((offset_of(text, e["range"]["start"]), offset_of(text, e["range"]["end"]), e["newText"])
                    for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def rewritten_call(text: str, edits: list[dict]) -> str:
    """The whole call the fix wrote, in the rewritten text: the text of the edit that replaced the
    deprecated name or call (the longest; others add or drop an import), and when that was a name only
    (a rename), the arguments that follow it up to their closing parenthesis."""
    main = max(edits, key=lambda e: len(e["newText"]))
    start = offset_of(text, main["range"]["start"])
    # Edits before it move it.
    for e in edits:
        if e is not main and offset_of(text, e["range"]["start"]) <= start:
            start += len(e["newText"]) - (offset_of(text, e["range"]["end"]) - offset_of(text, e["range"]["start"]))
    fixed = apply(text, edits)
    end = start + len(main["newText"])
    if fixed[end:end + 1] == "(":
        depth = 0
        for idx in range(end, len(fixed)):
            depth += {"(": 1, ")": -1}.get(fixed[idx], 0)
            if depth == 0:
                end = idx + 1
                break
    return fixed[start:end]


def original_call(text: str, edits: list[dict]) -> str:
    """The deprecated call as the original text writes it: the range the main edit replaces, with
    the arguments that follow a replaced name."""
    main = max(edits, key=lambda e: len(e["newText"]))
    start, end = offset_of(text, main["range"]["start"]), offset_of(text, main["range"]["end"])
    if text[end:end + 1] == "(":
        depth = 0
        for idx in range(end, len(text)):
            depth += {"(": 1, ")": -1}.get(text[idx], 0)
            if depth == 0:
                end = idx + 1
                break
    return text[start:end]


def catalog() -> list[dict]:
    """The curated symbols that are deprecated."""
    res = []
    for path in sorted(glob.glob(os.path.join(ROOT, "catalog", "*.toml"))):
        with open(path, "rb") as f:
            data = tomllib.load(f)
        for symbol in data.get("symbols", []):
            if "deprecated" in symbol:
                res.append(symbol | {"file": os.path.basename(path), "languages": data["system"].get("languages", [])})
    return res


def deprecated_here(diagnostics: list[dict], name: str, text: str) -> list[dict]:
    """The diagnostics of `name` outside import lines."""
    lines = text.split("\n")
    res = []
    for d in diagnostics:
        if d.get("code") != "deprecated-api" or not d["message"].startswith(f"{name} is deprecated"):
            continue
        line = lines[d["range"]["start"]["line"]].lstrip()
        if not line.startswith(("import ", "from ")):
            res.append(d)
    return res


# NVRTC, through ctypes: the same library the server loads.
class Nvrtc:
    def __init__(self, lib: str):
        self.lib = ctypes.CDLL(lib)

    def compile(self, source: str, options: list[str]) -> tuple[bool, str, str]:
        """(compiled, PTX, log)"""
        lib = self.lib
        prog = ctypes.c_void_p()
        lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"case.cu", 0, None, None)
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        status = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        ptx = ""
        if status == 0:
            lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetPTX(prog, buf)
            ptx = buf.value.decode()
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
        return status == 0, ptx, log.value.decode(errors="replace")


def normalized_ptx(ptx: str) -> list[str]:
    """The instructions of a PTX text as their opcodes and constants, which survive register
    renaming and the choice of a 32-bit type (`ld.global.f32` reads as `ld.global.x32`): the legacy
    intrinsics take a float overload where the `_sync` ones load the same bits as an integer. The
    warp intrinsics' `.sync` and the full mask they take (`mov.u32 %r5, -1;`) are set aside."""
    res = []
    for line in ptx.splitlines():
        line = line.split("//")[0].strip()
        if not line or line.startswith((".", "{", "}", ")", "(")) or line.endswith(":"):
            continue
        opcode, _, operands = line.rstrip(";").partition(" ")
        opcode = re.sub(r"\.sync(?=\.)", "", opcode)
        opcode = re.sub(r"\.[fubs](16|32|64)\b", r".x\1", opcode)
        constants = [op.strip() for op in operands.split(",") if re.fullmatch(r"-?\d+", op.strip())]
        if opcode.startswith("mov.") and constants == ["-1"]:
            continue
        res.append(" ".join([opcode, *constants]))
    return res


def run_python(program: str, call: str | None) -> dict:
    args = [PYTHON, HARNESS, program] + ([call] if call is not None else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"})
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"ran": False, "stdout": "", "error": proc.stderr[-2000:], "deprecations": [], "binds": []}


def compile_host(path: str, includes: list[str], extra: list[str]) -> tuple[bool, str]:
    cmd = ["g++", "-x", "c++", "-std=c++17", "-fsyntax-only", "-Wall", *extra, *[f"-I{i}" for i in includes], path]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr


def check_case(case: dict, lsp: Lsp, work: str, nvrtc12: Nvrtc, nvrtc13: Nvrtc, cuda13: str) -> list[str]:
    """The problems of one case (empty when it passes), printing what it did."""
    problems = []
    name, code = case["symbol"], case["code"].lstrip("\n")
    path = os.path.join(work, case["file"])
    uri = "file://" + path
    with open(path, "w") as f:
        f.write(code)
    lsp.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language_of(path), "version": 1, "text": code}})
    before = deprecated_here(lsp.diagnostics(uri, 1), name, code)
    if not before:
        problems.append(f"no deprecation diagnostic of {name} in the original")
    at = code.find(case["at"])
    if at < 0:
        return [f"`at` {case['at']!r} is not in the code"]
    pos = position(code, at + 1)
    actions = lsp.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": {"start": pos, "end": pos},
                                                      "context": {"diagnostics": []}}) or []
    fixes = [a for a in actions if a.get("kind") == "quickfix" and a["title"].startswith(("Rewrite as", "Replace"))]
    if len(fixes) != 1:
        lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        return problems + [f"expected one deprecation fix, got {[a['title'] for a in fixes]}"]
    fix = fixes[0]
    edits = fix["edit"]["changes"][uri]
    fixed = apply(code, edits)
    call = rewritten_call(code, edits)
    lsp.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]})
    left = deprecated_here(lsp.diagnostics(uri, 2), name, fixed)
    if left:
        problems.append(f"the rewrite still uses {name}: {[d['message'] for d in left]}")
    lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    fixed_path = os.path.join(work, "fixed_" + case["file"])
    with open(fixed_path, "w") as f:
        f.write(fixed)
    preferred = fix.get("isPreferred", False)
    print(f"  {name}: {fix['title']} ({'preferred' if preferred else 'not preferred'})")
    print("    " + "\n    ".join(line for line in apply(code, edits).splitlines() if line not in code.splitlines()))
    lang = language_of(path)
    old_name = name.rsplit(".", 1)[-1]
    if lang == "python":
        # Before and after side by side: each run imports the framework, which takes seconds.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            bind_only = case.get("run") == "bind"
            old_call = original_call(code, edits) if bind_only else None
            old_run, new_run = pool.submit(run_python, path, old_call), pool.submit(run_python, fixed_path, call)
            old, new = old_run.result(), new_run.result()
        if case.get("old") == "absent":
            if old["ran"]:
                problems.append(f"the case says {name} is gone, but the original runs")
            else:
                print(f"    original fails as the installed package no longer has it: {old['error'].strip().splitlines()[-1]}")
        elif not old["ran"]:
            problems.append(f"the original does not run: {old['error']}")
        if not new["ran"]:
            problems.append(f"the rewrite does not run: {new['error']}")
        elif case.get("old") != "absent" and old["ran"] and old["stdout"] != new["stdout"]:
            problems.append(f"different output: before {old['stdout']!r}, after {new['stdout']!r}")
        else:
            print(f"    same output: {new['stdout'].strip()!r}" if case.get("old") != "absent"
                  else f"    the rewrite runs: {new['stdout'].strip()!r}")
        stale = [w for w in new["deprecations"] if old_name in w]
        if stale:
            problems.append(f"the rewrite still warns: {stale}")
        if old["deprecations"]:
            print(f"    the original warned: {old['deprecations'][0][:120]}")
        if case.get("run") == "bind":
            # The package cannot run here (it needs a GPU): both calls must bind to the real signatures.
            for label, report in (("original", old), ("rewritten", new)):
                if not any(b.startswith("ok") for b in report["binds"]) or any(b.startswith("error") for b in report["binds"]):
                    problems.append(f"the {label} call does not bind: {report['binds']}")
            print(f"    cannot run without a GPU; the original binds: {', '.join(old['binds'])}")
        bad = [b for b in new["binds"] if b.startswith("error")]
        if bad:
            problems.append(f"the rewritten call does not bind: {bad}")
        print(f"    binds: {', '.join(new['binds']) or 'nothing to bind'}")
    elif "headers" in case:
        cu12 = os.path.join(CACHE, "cu12", "nvidia")
        include = {
            # CUDA 12's runtime headers include crt/host_defines.h, which its nvcc wheel ships; CUDA 13's
            # (tests/cuda/setup) serves, since the runtime headers of 12 come first.
            "cuda-runtime": ([f"{cu12}/cuda_runtime/include", f"{cuda13}/include"], [f"{cuda13}/include"]),
            "nvrtc": ([f"{cu12}/cuda_nvrtc/include"], [f"{cuda13}/include"]),
            "opencl": ([f"{CACHE}/opencl/usr/include"], None),
        }[case["headers"]]
        old_ok, old_log = compile_host(path, include[0], [])
        new_ok, new_log = compile_host(fixed_path, include[0], ["-Werror=deprecated-declarations"])
        if not old_ok:
            problems.append(f"the original does not compile: {old_log}")
        if not new_ok:
            problems.append(f"the rewrite does not compile without deprecation warnings: {new_log}")
        said = "the original warns" if "deprecated" in old_log else "the original compiles"
        print(f"    {said}; the rewrite compiles without deprecation warnings against the headers of {case['headers']}")
        if include[1]:
            new13, log13 = compile_host(fixed_path, include[1], ["-Werror=deprecated-declarations"])
            old13, _ = compile_host(path, include[1], [])
            if not new13:
                problems.append(f"the rewrite does not compile against CUDA 13's headers: {log13}")
            print(f"    against CUDA 13's headers: the original {'compiles' if old13 else 'no longer compiles'}, the rewrite compiles")
    else:
        options = ["--gpu-architecture=compute_60", "-default-device"]
        old_ok, old_ptx, old_log = nvrtc12.compile(code, options)
        new_ok, new_ptx, new_log = nvrtc12.compile(fixed, options)
        if not old_ok:
            problems.append(f"the original does not compile with CUDA 12's NVRTC: {old_log}")
        if not new_ok:
            problems.append(f"the rewrite does not compile with CUDA 12's NVRTC: {new_log}")
        if old_ok and new_ok:
            old_ops, new_ops = normalized_ptx(old_ptx), normalized_ptx(new_ptx)
            # The same instructions in the same order; constant moves may be scheduled elsewhere.
            same = sorted(old_ops) == sorted(new_ops) and \
                [op for op in old_ops if not op.startswith("mov.")] == [op for op in new_ops if not op.startswith("mov.")]
            if not same:
                import difflib
                diff = "\n".join(difflib.unified_diff(normalized_ptx(old_ptx), normalized_ptx(new_ptx), lineterm=""))
                problems.append(f"the PTX differs beyond the mask:\n{diff}")
            else:
                n = sum(1 for line in normalized_ptx(new_ptx) if line.startswith("shfl."))
                print(f"    CUDA 12 NVRTC (compute_60): the same instructions and constants before and after ({n} shuffles), the full mask aside")
        ok13, _, log13 = nvrtc13.compile(fixed, ["--gpu-architecture=compute_90", "-default-device"])
        old13, _, _ = nvrtc13.compile(code, ["--gpu-architecture=compute_90", "-default-device"])
        if not ok13:
            problems.append(f"the rewrite does not compile with CUDA 13's NVRTC: {log13}")
        print(f"    CUDA 13 NVRTC (compute_90): the original {'compiles' if old13 else 'no longer compiles'}, the rewrite compiles")
    return problems


def check_every_deprecation_is_flagged(lsp: Lsp, work: str, symbols: list[dict]) -> list[str]:
    """Each curated deprecation, written as code, gets its diagnostic."""
    problems = []
    for idx, symbol in enumerate(symbols):
        name = symbol["name"]
        if "." in name and "::" not in name:
            root = name.split(".")[0]
            text, path = f"import {root}\n{name}\n", os.path.join(work, f"flag_{idx}.py")
        else:
            text, path = f"void f() {{\n  {name};\n}}\n", os.path.join(work, f"flag_{idx}.cu")
        uri = "file://" + path
        lsp.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language_of(path), "version": 1, "text": text}})
        found = [d for d in lsp.diagnostics(uri, 1) if d.get("code") == "deprecated-api"]
        lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        if not found:
            problems.append(f"{name} ({symbol['file']}): no deprecation diagnostic on {text.splitlines()[-1 if path.endswith('.py') else 1].strip()!r}")
    return problems


def main() -> int:
    binary, cuda13 = sys.argv[1], sys.argv[2]
    started = time.time()
    with open(os.path.join(os.path.dirname(__file__), "cases.toml"), "rb") as f:
        cases = tomllib.load(f)["case"]
    symbols = catalog()
    fixes = {s["name"]: s["fix"] for s in symbols if s.get("fix", {}).get("kind") in ("rename", "template")}
    problems = []
    # Every fix has a case, and every case a fix.
    for name in sorted(set(fixes) - {c["symbol"] for c in cases}):
        problems.append(f"{name}: its {fixes[name]['kind']} fix has no case in tests/fixes/cases.toml")
    for case in cases:
        if case["symbol"] not in fixes:
            problems.append(f"{case['symbol']}: a case, but the catalog gives it no fix")
    nvrtc12 = Nvrtc(os.path.join(CACHE, "cu12", "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12"))
    nvrtc13 = Nvrtc(os.path.join(cuda13, "lib", "libnvrtc.so.13"))
    passed = 0
    with tempfile.TemporaryDirectory(prefix="tensorlens-fixes-") as work:
        lsp = Lsp(binary, work)
        try:
            only = [f for f in os.environ.get("TENSORLENS_FIXES_ONLY", "").split(",") if f]
            for case in cases:
                if case["symbol"] not in fixes or (only and case["file"] not in only):
                    continue
                case_started = time.time()
                found = check_case(case, lsp, work, nvrtc12, nvrtc13, cuda13)
                print(f"    ({time.time() - case_started:.1f} s)")
                if found:
                    print(f"    FAILED: {'; '.join(found)}")
                    problems += [f"{case['symbol']} ({case['file']}): {p}" for p in found]
                else:
                    passed += 1
            flag_started = time.time()
            flagged = check_every_deprecation_is_flagged(lsp, work, symbols)
            print(f"({time.time() - flag_started:.1f} s for the diagnostics of every deprecation)")
            problems += flagged
            print(f"deprecation diagnostics: {len(symbols) - len(flagged)} of {len(symbols)} curated deprecations flagged")
        finally:
            lsp.close()
    kinds = {}
    for symbol in symbols:
        if "replacement" in symbol:
            kind = symbol.get("fix", {}).get("kind", "not reviewed")
            kinds[kind] = kinds.get(kind, 0) + 1
    print(f"fixes of the {sum(kinds.values())} deprecations with a replacement: {kinds}")
    print(f"{passed} of {len(cases)} cases passed in {time.time() - started:.0f} s")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
