"""Compiles Triton kernels for a named NVIDIA target without a GPU, for tensorlens.

The server ships this file inside its binary and runs it with the user's Python (`python
triton_worker.py [--cache-dir DIR]`). It speaks JSON lines: one request a line on stdin, one answer
a line on stdout, in order, and stays up between requests. Stdlib and triton only.

Requests (every answer echoes the request's "id"; null when the line was not a JSON object)
  {"id": 1, "op": "version"}
      -> {"id": 1, "ok": true, "triton": "3.9.0", "python": "3.11.7", "cache_dir": "...",
          "tools": {"ptxas": path, "ptxas_blackwell": path, "nvdisasm": path or null, "cuobjdump": ...}}
  {"id": 2, "op": "warm", "arch": 90}  -> {"id": 2, "ok": true, "compile_ms": 450.1}
      compiles a tiny built-in kernel: Triton's one-time setup in a process (~0.4 s) is then paid
      before the first real request.
  {"id": 3, "op": "shutdown"}  -> {"id": 3, "ok": true}, then the worker exits (so does EOF on stdin)
  {"id": 4, "op": "kernels", "filename": ..., "source": ...}
      -> {"id": 4, "ok": true, "kernels": [{"name", "function", "line" (the def), "column",
          "first_line" (the first decorator), "params": [{"name", "constexpr", "annotation"?,
          "default"?}], "autotune": {"configs": [{"constexprs", "options"}], "key": [...]} or null,
          "heuristics": [param names] or null}, ...]}
      every @jit function the source defines (helpers too), with @autotune configs as Python
      evaluated them (comprehensions included).
  {"id": 5, "op": "compile",
   "filename": "/abs/path/kern.py",     # the user's file: names the source for inspect and line info
   "source": "<python text>",           # that file with every unneeded line blanked (lines keep their numbers)
   "kernel": "add_kernel",              # a @triton.jit function (or @autotune/@heuristics over one)
   "signature": {"x_ptr": "*fp32", "n_elements": "i32", "BLOCK_SIZE": "constexpr"},
   "constexprs": {"BLOCK_SIZE": 1024},  # a constexpr parameter missing here takes its Python default
   "options": {"num_warps": 4, "num_stages": 3},   # any Triton CUDA option; Triton's defaults otherwise
   "arch": 90,                          # or "sm_90" / "sm_90a"; default 90
   "divisibility_16": ["x_ptr"],        # optional: params assumed 16-divisible (tt.divisibility=16),
                                        #   or "pointers" for every pointer param; default none
   "want": ["ttir", "ttgir", "llir", "ptx", "sass"],   # IR texts to return; default none
   "modules": [{"name": "_tensorlens_helper_0", "filename": "/abs/path/helpers.py", "source": "..."}],
                                        # optional: workspace modules the source imports @jit helpers
                                        #   from, blanked like the source and imported under `name`
                                        #   (the server points the source's import line at it); a
                                        #   module's own helper modules come before it
   "nvdisasm": "/path/to/nvdisasm",     # optional: disassemble with this one (a newer nvdisasm marks
                                        #   spill stores and loads, which Triton's bundled one does not)
   "configs": [{"constexprs": {...}, "options": {...}}, ...]   # optional, see below
  }
  Answer (one config):
    {"id": 5, "ok": true, "name": "add_kernel", "arch": "sm_90", "gpu_name": "sm_90a",
     "num_warps": 4, "num_stages": 3, "num_ctas": 1, "registers": 30, "spill_stores": 0,
     "spill_loads": 0, "shared_bytes": 0, "local_bytes": 0, "compile_ms": 512.3,
     "triton_ms": 498.1, "cache_hit": false, "stats_source": "ptxas-log", "triton": "3.9.0",
     "divisibility_16": [], "launch": {...}, "ir": {"ptx": "..."}, "warnings": [...]?, "tmem_bytes"?}
    registers/spills/local_bytes are what Triton's own ptxas run printed (its bundled ptxas, its
    flags; gpu_name is the name it compiled for, sm_90a for sm_90); shared_bytes is Triton's
    metadata.shared (the dynamic shared memory a launch asks for); local_bytes is ptxas's stack
    frame. compile_ms is this request's wall time in the worker, triton_ms what Triton's compile
    listener measured for triton.compile itself; cache_hit says whether Triton's cache served it
    (stats_source is then "ptxas-log (cached)": the log the worker kept beside the cache). SASS
    comes from the nvdisasm bundled with Triton (with -gi line info), else a note in "warnings".
    launch is what a launch of this compiled kernel takes, as Triton's CUDA launcher does it:
      {"entry": "add_kernel", "num_warps": 4, "threads": 128, "num_ctas": 1, "shared_bytes": 0,
       "params": [{"name": "x_ptr", "type": "*fp32"}, ..., {"name": "n_elements", "type": "i32"},
                  {"name": "global_scratch", "type": "*i8", "hidden": true, "bytes_per_program": 0,
                   "align": 1}, {"name": "profile_scratch", ...}],
       "cooperative": false, "pdl": false, "tensor_descriptors": 0, "ptx_params": 6, "problem"?}
    params are in PTX order: the signature's without its constexprs, then the hidden scratch
    pointers Triton 3.x appends (a buffer of bytes_per_program x programs x num_ctas bytes, or a
    null pointer when bytes_per_program is 0). threads = 32 x num_warps per program; shared_bytes
    is the dynamic shared memory to launch with (past 48 KiB the function must be allowed it
    first). ptx_params counts the .param entries of the PTX .entry; "problem" says why the two
    disagree (or that the PTX has no such entry), in which case the list is not to be trusted.
  A compile error:
    {"id": 5, "ok": false, "kind": "compile", "stage": "frontend", "error": "<Triton's message>",
     "line": 12, "column": 5, "function": "helper", "trace": [{"function", "line", "column"}, ...]}
    line/column are 1-based positions in the file (either may be null); trace lists the call
    sites from the kernel down to the failing @jit function (frontend errors only). stage is
    "source" (the text itself does not run: syntax error, missing name), "options" (Triton
    rejects the options, e.g. num_warps 3), "frontend" (Triton's code generator), "backend" (an
    MLIR/LLVM pass; line from its diagnostic when it printed one) or "ptxas".
  Other failures: {"id", "ok": false, "kind": "request" | "internal", "error": "...",
  "traceback"? (internal only)}; the worker goes on with the next line. Without a usable triton
  every request but shutdown answers {"ok": false, "kind": "environment", "error", "triton":
  version or null, "python"}.
  Configs: "configs" is a list of {"constexprs", "options", "divisibility_16"}, each merged over
  the request's own, or the string "autotune" for the configs of the kernel's @triton.autotune.
  The answer is {"id", "ok": true, "compile_ms", "results": [<a one-config answer without id,
  plus "config": {"constexprs", "options"}>, ...]}; each result may itself be ok: false.

Stdout carries only protocol lines: fd 1 is pointed at stderr at start, and each compile runs with
fds 1 and 2 captured (Triton prints the ptxas log with print(); MLIR prints diagnostics from C++),
then forwarded to stderr. Caching: Triton's cache lives in --cache-dir (or
$TENSORLENS_TRITON_CACHE_DIR; default a temporary folder removed at exit), with the ptxas log and
SASS of each compiled kernel kept beside it (tensorlens-ptxas/<hash>.log|.sass), since a cache hit
runs no ptxas. A hit without a kept log (an entry this worker did not make) is compiled again.
A C++ abort inside Triton (rare) ends the process: the server restarts the worker. Big configs
can take minutes in ptxas: the server should time requests out and restart the worker.

Never imports the user's module: the source is executed in a fresh module registered under
`filename` in linecache, so Triton's inspect.getsourcelines reads the request's text.
"""

import argparse
import ast
import contextlib
import inspect
import json
import linecache
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import types
import zlib

# The protocol owns the process's real stdout; fd 1 itself is pointed at stderr so that whatever
# Triton, MLIR, LLVM or ptxas print never reaches the protocol stream.
_PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
# Likewise requests come from a private copy of fd 0; code in the source that reads stdin reads
# /dev/null instead of the next request.
_REQUESTS = os.fdopen(os.dup(0), "r", encoding="utf-8")
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
sys.stdin = open(os.devnull, "r")

# Triton may be missing or too old in the user's environment: the worker then still runs and
# answers every request with kind "environment" (tested with triton 3.9.0; it needs triton.knobs
# and the ASTSource of the 3.x releases that have it).
try:
    import triton  # noqa: E402
    from triton import knobs  # noqa: E402
    from triton.backends.compiler import GPUTarget  # noqa: E402
    from triton.compiler import ASTSource  # noqa: E402
    from triton.compiler.compiler import make_backend  # noqa: E402
    from triton.compiler.errors import CompilationError  # noqa: E402
    from triton.runtime.jit import JITFunction  # noqa: E402
    IMPORT_ERROR = None
except Exception as _e:  # ImportError, or anything a broken install raises
    IMPORT_ERROR = f"{type(_e).__name__}: {_e}"
    triton = knobs = GPUTarget = ASTSource = make_backend = JITFunction = None

    class CompilationError(Exception):
        pass

IR_KINDS = ("ttir", "ttgir", "llir", "ptx", "sass")
WARM_FILE = "/tensorlens/builtin/warm_kernel.py"
WARM_SOURCE = """import triton
import triton.language as tl


@triton.jit
def tensorlens_warm_kernel(p):
    i = tl.program_id(0)
    tl.store(p + i, tl.load(p + i) * 2.0)
"""
_module_counter = 0


class RequestError(Exception):
    """The request itself is malformed."""


class SourceError(Exception):
    def __init__(self, message, line, column):
        super().__init__(message)
        self.line = line
        self.column = column


# ---------------------------------------------------------------------------------------------
# Output capture and ptxas log parsing


@contextlib.contextmanager
def captured_fds():
    """Points fds 1 and 2 (and sys.stdout/sys.stderr, which write to them) at a temporary file
    for the duration; yields a list that receives the captured text afterwards. The text is then
    forwarded to the real stderr."""
    out = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved1, saved2 = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved1, 1)
            os.dup2(saved2, 2)
            os.close(saved1)
            os.close(saved2)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            out.append(text)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


_ENTRY_RE = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
_REGS_RE = re.compile(r"Used (\d+) registers")
_FRAME_RE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_SMEM_RE = re.compile(r"(\d+) bytes smem")


def parse_ptxas_log(text, name):
    """Registers, spills and stack frame of entry `name` from a `ptxas -v` log, or None."""
    lines = text.splitlines()
    start = None
    gpu = None
    for i, line in enumerate(lines):
        m = _ENTRY_RE.search(line)
        if m and m.group(1) == name:
            start, gpu = i, m.group(2)
            break
    if start is None:
        return None
    stats = {"gpu_name": gpu}
    for line in lines[start + 1:]:
        m = _ENTRY_RE.search(line)
        if m:
            break
        m = _FRAME_RE.search(line)
        if m and "local_bytes" not in stats:
            stats["local_bytes"] = int(m.group(1))
            stats["spill_stores"] = int(m.group(2))
            stats["spill_loads"] = int(m.group(3))
        m = _REGS_RE.search(line)
        if m:
            stats["registers"] = int(m.group(1))
            m = _SMEM_RE.search(line)
            stats["static_smem_bytes"] = int(m.group(1)) if m else 0
            break
    if "registers" not in stats:
        return None
    stats.setdefault("local_bytes", 0)
    stats.setdefault("spill_stores", 0)
    stats.setdefault("spill_loads", 0)
    stats["ptxas_warnings"] = [ln.strip() for ln in lines if " warning " in ln or "warning :" in ln]
    return stats


_MLIR_DIAG_RE = re.compile(r"^(.*?):(\d+):(\d+): error: (.*)$", re.MULTILINE)


def mlir_diagnostic(text, filename):
    for m in _MLIR_DIAG_RE.finditer(text):
        if m.group(1) == filename:
            return int(m.group(2)), int(m.group(3)), m.group(4)
    m = _MLIR_DIAG_RE.search(text)
    if m:
        return None, None, m.group(4)
    return None


# ---------------------------------------------------------------------------------------------
# Tools next to Triton's bundled ptxas


def nvidia_tool(name):
    try:
        path = getattr(knobs.nvidia, name).path
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    except Exception:
        pass
    here = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which(name)


def disassemble(cubin, nvdisasm=None):
    """SASS text of a cubin, with `nvdisasm` when given, else the one beside Triton's ptxas (or
    cuobjdump -sass); (text, None) or (None, note)."""
    if nvdisasm is not None and not (os.path.isfile(nvdisasm) and os.access(nvdisasm, os.X_OK)):
        return None, f"no SASS: nvdisasm {nvdisasm} is not an executable file"
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        nvdisasm = nvdisasm or nvidia_tool("nvdisasm")
        if nvdisasm:
            r = subprocess.run([nvdisasm, "-c", "-gi", path], capture_output=True, text=True)
            if r.returncode != 0:  # older nvdisasm without -gi
                r = subprocess.run([nvdisasm, "-c", path], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout, None
            return None, f"nvdisasm failed: {r.stderr.strip()[:500]}"
        cuobjdump = nvidia_tool("cuobjdump")
        if cuobjdump:
            r = subprocess.run([cuobjdump, "-sass", path], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout, None
            return None, f"cuobjdump -sass failed: {r.stderr.strip()[:500]}"
        return None, "no SASS: neither nvdisasm nor cuobjdump was found next to Triton's ptxas"
    finally:
        os.unlink(path)


# ---------------------------------------------------------------------------------------------
# The user's source in a fresh module


HELPER_PREFIX = "_tensorlens_helper_"


def load_source(filename, source, name=None):
    """Executes `source` as a fresh module named after nothing the user has (or `name`, for a
    helper module the kernel's source imports under that name), registered as the text of
    `filename` for linecache/inspect. Returns the module's namespace."""
    global _module_counter
    _module_counter += 1
    if not source.endswith("\n"):
        source += "\n"
    lines = source.splitlines(keepends=True)
    # mtime None: linecache.checkcache leaves the entry alone although the file on disk differs.
    linecache.cache[filename] = (len(source), None, lines, filename)
    if name is None:
        name = f"_tensorlens_triton_{_module_counter}"
        for old in [k for k in sys.modules if k.startswith("_tensorlens_triton_")]:
            del sys.modules[old]
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__["__builtins__"] = __builtins__
    sys.modules[name] = module
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise SourceError(f"{type(e).__name__}: {e.msg}", e.lineno, e.offset) from None
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as e:
        line = None
        for frame, lineno in traceback.walk_tb(e.__traceback__):
            if frame.f_code.co_filename == filename:
                line = lineno
        raise SourceError(f"{type(e).__name__}: {e}", line, None) from None
    return module.__dict__


def json_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if hasattr(value, "value") and type(value).__name__ == "constexpr":
        return json_value(value.value)
    if hasattr(value, "name") and type(value).__module__.startswith("triton"):  # a tl dtype
        return str(value)
    return repr(value)


def describe_kernel(name, value, fn, autotuner):
    """What the source defines under `name`: the @jit function's parameters and line, and the
    Python-evaluated @autotune configs (often built by comprehensions a parser cannot evaluate)."""
    params = []
    for i, (pname, p) in enumerate(inspect.signature(fn.fn).parameters.items()):
        jit_param = fn.params[i] if i < len(getattr(fn, "params", [])) else None
        entry = {"name": pname, "constexpr": bool(getattr(jit_param, "is_constexpr", False))}
        if p.annotation is not inspect.Parameter.empty:
            entry["annotation"] = p.annotation if isinstance(p.annotation, str) else getattr(
                p.annotation, "__name__", repr(p.annotation))
        if p.default is not inspect.Parameter.empty:
            entry["default"] = json_value(p.default)
        params.append(entry)
    out = {"name": name, "function": fn.__name__, "line": fn.def_file_line_number,
           "column": fn.def_file_col_number, "first_line": fn.starting_line_number,
           "params": params, "autotune": None, "heuristics": None}
    if autotuner is not None:
        configs = []
        for c in autotuner.configs:
            opts = {k: getattr(c, k) for k in ("num_warps", "num_stages", "num_ctas", "maxnreg")
                    if getattr(c, k, None) is not None}
            configs.append({"constexprs": {k: json_value(v) for k, v in c.kwargs.items()}, "options": opts})
        out["autotune"] = {"configs": configs, "key": list(getattr(autotuner, "keys", []) or [])}
    obj, heuristics = value, []
    while obj is not None and obj is not fn:
        if type(obj).__name__ == "Heuristics":
            heuristics.extend(getattr(obj, "values", {}).keys())
        obj = getattr(obj, "fn", None)
    if heuristics:
        out["heuristics"] = heuristics
    return out


def unwrap_jit(obj):
    """The JITFunction under @autotune/@heuristics wrappers, and the outermost autotuner."""
    autotuner = None
    seen = 0
    while obj is not None and seen < 10:
        seen += 1
        if JITFunction is not None and isinstance(obj, JITFunction):
            return obj, autotuner
        if type(obj).__name__ == "Autotuner" and autotuner is None:
            autotuner = obj
        obj = getattr(obj, "fn", None)
    return None, autotuner


def jit_functions(namespace):
    out = []
    for value in list(namespace.values()):
        fn, _ = unwrap_jit(value)
        if fn is not None and fn not in out:
            out.append(fn)
    return out


# ---------------------------------------------------------------------------------------------
# Compile errors


def compile_error_answer(exc, namespace, filename, kernel_fn):
    """Turns a CompilationError chain into file positions: the innermost error is where it
    happened, the outer ones are the call sites leading there."""
    chain = []
    e = exc
    while e is not None and len(chain) < 50:
        if isinstance(e, CompilationError):
            chain.append(e)
        e = e.__cause__ or (e.__context__ if not e.__suppress_context__ else None)
    fns = jit_functions(namespace)
    if kernel_fn not in fns:
        fns.append(kernel_fn)

    def locate(err):
        node = err.node
        fn = next((f for f in fns if getattr(f, "src", None) == err.src), None)
        if fn is None or not hasattr(node, "lineno"):
            return {"function": getattr(fn, "__name__", None), "line": None, "column": None}
        line = fn.def_file_line_number + node.lineno - 1
        column = fn.def_file_col_number + node.col_offset if hasattr(node, "col_offset") else None
        return {"function": fn.__name__, "line": line, "column": column}

    trace = [locate(err) for err in chain]
    inner = chain[-1]
    message = inner.error_message
    if not message:
        # An error below the innermost CompilationError that Triton did not put in a message.
        cause = inner.__cause__
        message = f"{type(cause).__name__}: {cause}" if cause is not None else inner.message
    where = trace[-1]
    return {
        "ok": False,
        "kind": "compile",
        "stage": "frontend",
        "error": str(message).strip(),
        "line": where["line"],
        "column": where["column"],
        "function": where["function"],
        "trace": trace,
    }


# ---------------------------------------------------------------------------------------------
# Requests


def parse_arch(value):
    if value is None:
        return 90
    if isinstance(value, bool):
        raise RequestError("arch must be an integer like 90 or a string like 'sm_90'")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"(?:sm_?|compute_?)?(\d+)a?", value.strip())
        if m:
            return int(m.group(1))
    raise RequestError(f"arch {value!r}: expected an integer like 90 or a string like 'sm_90'")


def expect_dict(req, key):
    value = req.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"'{key}' must be an object")
    return value


def build_signature(fn, signature, constexprs):
    """Checks the request's signature against the function and fills in constexpr defaults."""
    params = inspect.signature(fn.fn).parameters
    unknown = [k for k in list(signature) + list(constexprs) if k not in params]
    if unknown:
        raise RequestError(f"{fn.__name__} has no parameter(s) {', '.join(sorted(set(unknown)))}")
    signature = dict(signature)
    constexprs = dict(constexprs)
    missing = []
    for name, p in params.items():
        if name in constexprs and name not in signature:
            signature[name] = "constexpr"
        if name not in signature:
            if p.default is not inspect.Parameter.empty:
                signature[name] = "constexpr"
                constexprs[name] = p.default
            else:
                missing.append(name)
        elif signature[name] == "constexpr" and name not in constexprs:
            if p.default is not inspect.Parameter.empty:
                constexprs[name] = p.default
            else:
                raise RequestError(f"constexpr parameter {name} of {fn.__name__} needs a value in 'constexprs'")
    if missing:
        raise RequestError(f"signature lacks parameter(s) of {fn.__name__}: {', '.join(missing)}")
    for name, ty in signature.items():
        if not isinstance(ty, str):
            raise RequestError(f"signature type of {name} must be a string like '*fp32' or 'i32'")
    # Triton's order is the function's parameter order.
    ordered = {name: signature[name] for name in params}
    return ordered, constexprs


def build_attrs(fn, signature, divisible):
    if divisible is None:
        return {}, []
    names = list(inspect.signature(fn.fn).parameters)
    if divisible == "pointers":
        divisible = [n for n, ty in signature.items() if ty.startswith("*")]
    if not isinstance(divisible, list) or not all(isinstance(n, str) for n in divisible):
        raise RequestError("'divisibility_16' must be a list of parameter names or \"pointers\"")
    attrs = {}
    for n in divisible:
        if n not in names:
            raise RequestError(f"divisibility_16: {fn.__name__} has no parameter {n}")
        attrs[(names.index(n),)] = [["tt.divisibility", 16]]
    return attrs, divisible


class Worker:

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self.stats_dir = os.path.join(cache_dir, "tensorlens-ptxas")
        os.makedirs(self.stats_dir, exist_ok=True)
        self.last_times = None
        if IMPORT_ERROR is not None:
            return
        knobs.cache.dir = cache_dir
        knobs.nvidia.dump_ptxas_log = True
        self.last_times = None
        knobs.compilation.listener = self._listener

    def _listener(self, *, src, metadata, metadata_group, times, cache_hit):
        self.last_times = (times.total / 1000.0, cache_hit)

    # -- ops --

    def handle(self, req):
        if not isinstance(req, dict):
            raise RequestError("a request is a JSON object")
        op = req.get("op")
        if IMPORT_ERROR is not None and op != "shutdown":
            version = None
            with contextlib.suppress(Exception):
                import importlib.metadata
                version = importlib.metadata.version("triton")
            return {"ok": False, "kind": "environment", "triton": version, "python": platform.python_version(),
                    "error": f"triton is not usable in {sys.executable}: {IMPORT_ERROR}"}
        if op == "version":
            return {"ok": True, "triton": triton.__version__, "python": platform.python_version(),
                    "cache_dir": self.cache_dir,
                    "tools": {t: nvidia_tool(t) for t in ("ptxas", "ptxas_blackwell", "nvdisasm", "cuobjdump")}}
        if op == "compile":
            return self.compile_request(req)
        if op == "kernels":
            return self.kernels_request(req)
        if op == "warm":
            return self.warm_request(req)
        if op == "shutdown":
            return {"ok": True}
        raise RequestError(f"unknown op {op!r} (expected compile, kernels, warm, version or shutdown)")

    def kernels_request(self, req):
        for key in ("filename", "source"):
            if not isinstance(req.get(key), str) or not req.get(key):
                raise RequestError(f"'{key}' must be a non-empty string")
        try:
            namespace = load_source(req["filename"], req["source"])
        except SourceError as e:
            return {"ok": False, "kind": "compile", "stage": "source", "error": str(e), "line": e.line,
                    "column": e.column}
        kernels = []
        for name, value in list(namespace.items()):
            fn, autotuner = unwrap_jit(value)
            if fn is None or fn.__name__ != name and value is fn:
                continue
            kernels.append(describe_kernel(name, value, fn, autotuner))
        kernels.sort(key=lambda k: k["line"])
        return {"ok": True, "kernels": kernels}

    def warm_request(self, req):
        """Compiles a tiny built-in kernel once, so that the first real request does not pay
        Triton's one-time setup (MLIR context, libdevice, ptxas --version: ~0.4 s)."""
        t0 = time.perf_counter()
        answer = self.compile_request({
            "filename": WARM_FILE, "source": WARM_SOURCE, "kernel": "tensorlens_warm_kernel",
            "signature": {"p": "*fp32"}, "constexprs": {}, "arch": req.get("arch", 90)})
        if not answer.get("ok"):
            return {"ok": False, "kind": "internal", "error": f"warm-up compile failed: {answer.get('error')}"}
        return {"ok": True, "compile_ms": round((time.perf_counter() - t0) * 1000.0, 2)}

    def compile_request(self, req):
        started = time.perf_counter()
        for key in ("filename", "source", "kernel"):
            if not isinstance(req.get(key), str) or not req.get(key):
                raise RequestError(f"'{key}' must be a non-empty string")
        filename = req["filename"]
        want = req.get("want") or []
        if not isinstance(want, list) or any(w not in IR_KINDS for w in want):
            raise RequestError(f"'want' must be a list drawn from {list(IR_KINDS)}")
        arch = parse_arch(req.get("arch"))
        base_constexprs = expect_dict(req, "constexprs")
        base_options = expect_dict(req, "options")
        configs = req.get("configs")

        modules = req.get("modules") or []
        if not isinstance(modules, list) or not all(
                isinstance(m, dict) and all(isinstance(m.get(k), str) and m.get(k) for k in ("name", "filename", "source"))
                and m["name"].startswith(HELPER_PREFIX) for m in modules):
            raise RequestError(f"'modules' must be a list of {{name: {HELPER_PREFIX}..., filename, source}}")
        for old in [k for k in sys.modules if k.startswith(HELPER_PREFIX)]:
            del sys.modules[old]
        for m in modules:  # a module's own helper modules come before it
            try:
                load_source(m["filename"], m["source"], name=m["name"])
            except SourceError as e:
                where = f"line {e.line}" if e.line else "its source"
                return {"ok": False, "kind": "compile", "stage": "source", "line": None, "column": None,
                        "error": f"the helper module {m['filename']} does not run ({where}): {e}"}
        try:
            namespace = load_source(filename, req["source"])
        except SourceError as e:
            return {"ok": False, "kind": "compile", "stage": "source", "error": str(e), "line": e.line,
                    "column": e.column}
        obj = namespace.get(req["kernel"])
        if obj is None:
            raise RequestError(f"the source defines no {req['kernel']!r}")
        fn, autotuner = unwrap_jit(obj)
        if fn is None:
            raise RequestError(f"{req['kernel']} is not a @triton.jit function")

        if configs is None:
            answer = self.compile_one(fn, namespace, req, filename, base_constexprs, base_options,
                                      req.get("divisibility_16"), arch, want)
            answer["compile_ms"] = round((time.perf_counter() - started) * 1000.0, 2)
            return answer
        if configs == "autotune":
            if autotuner is None:
                raise RequestError(f"{req['kernel']} has no @triton.autotune configs")
            configs = describe_kernel(req["kernel"], obj, fn, autotuner)["autotune"]["configs"]
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise RequestError("'configs' must be a list of objects or \"autotune\"")
        results = []
        for config in configs:
            t0 = time.perf_counter()
            constexprs = dict(base_constexprs, **expect_dict(config, "constexprs"))
            options = dict(base_options, **expect_dict(config, "options"))
            divisible = config.get("divisibility_16", req.get("divisibility_16"))
            try:
                result = self.compile_one(fn, namespace, req, filename, constexprs, options, divisible, arch, want)
            except RequestError as e:
                result = {"ok": False, "kind": "request", "error": str(e)}
            except Exception as e:
                result = internal_error(e)
            result["config"] = {"constexprs": constexprs, "options": options}
            result["compile_ms"] = round((time.perf_counter() - t0) * 1000.0, 2)
            results.append(result)
        return {"ok": True, "results": results,
                "compile_ms": round((time.perf_counter() - started) * 1000.0, 2)}

    def compile_one(self, fn, namespace, req, filename, constexprs, options, divisible, arch, want):
        signature, constexprs = build_signature(fn, expect_dict(req, "signature"), constexprs)
        attrs, divisible = build_attrs(fn, signature, divisible)
        warnings = []
        from triton.backends.nvidia.compiler import CUDAOptions
        unknown = sorted(set(options) - set(CUDAOptions.__dataclass_fields__))
        if unknown:
            warnings.append(f"Triton ignores unknown option(s): {', '.join(unknown)}")
        try:
            src = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
        except Exception as e:
            raise RequestError(f"bad signature or constexprs: {type(e).__name__}: {e}") from None
        target = GPUTarget("cuda", arch, 32)
        try:
            make_backend(target).parse_options(dict(options))
        except Exception as e:
            return {"ok": False, "kind": "compile", "stage": "options", "error": f"{type(e).__name__}: {e}".strip(),
                    "line": None, "column": None}

        captured = []

        def run(always):
            knobs.compilation.always_compile = always
            self.last_times = None
            try:
                with captured_fds() as out:
                    captured.append(out)
                    compiled = triton.compile(src, target=target, options=options)
            finally:
                knobs.compilation.always_compile = False
            return compiled, out[0]

        try:
            compiled, log = run(False)
            name = compiled.metadata.name
            stats = parse_ptxas_log(log, name)
            sidecar = os.path.join(self.stats_dir, f"{compiled.metadata.hash}.log")
            if stats is not None:
                write_atomically(sidecar, log)
                source_of_stats = "ptxas-log"
            else:
                cached_log = None
                if os.path.exists(sidecar):
                    with open(sidecar) as f:
                        cached_log = f.read()
                    stats = parse_ptxas_log(cached_log, name)
                if stats is not None:
                    source_of_stats = "ptxas-log (cached)"
                else:
                    # A cache entry this worker did not make: compile again to hear ptxas.
                    compiled, log = run(True)
                    stats = parse_ptxas_log(log, name)
                    if stats is None:
                        raise RuntimeError("Triton's ptxas printed no resource usage for " + name)
                    write_atomically(sidecar, log)
                    source_of_stats = "ptxas-log"
        except CompilationError as e:
            return compile_error_answer(e, namespace, filename, fn)
        except Exception as e:
            return backend_error_answer(e, filename, "".join(captured[-1]) if captured else "")

        md = compiled.metadata
        triton_ms, cache_hit = self.last_times if self.last_times else (None, None)
        answer = {
            "ok": True,
            "name": md.name,
            "arch": f"sm_{arch}",
            "gpu_name": stats["gpu_name"],
            "num_warps": md.num_warps,
            "num_stages": md.num_stages,
            "num_ctas": md.num_ctas,
            "registers": stats["registers"],
            "spill_stores": stats["spill_stores"],
            "spill_loads": stats["spill_loads"],
            "shared_bytes": md.shared,
            "local_bytes": stats["local_bytes"],
            "triton_ms": round(triton_ms, 2) if triton_ms is not None else None,
            "cache_hit": cache_hit,
            "stats_source": source_of_stats,
            "triton": triton.__version__,
            "divisibility_16": divisible,
            "launch": launch_info(compiled, signature),
            "ir": {},
        }
        if getattr(md, "tmem_size", 0):
            answer["tmem_bytes"] = md.tmem_size
        warnings.extend(stats["ptxas_warnings"])
        for kind in want:
            if kind == "sass":
                tool = req.get("nvdisasm")
                tag = "" if tool is None else "-" + format(zlib.crc32(str(tool).encode()), "08x")
                sass_file = os.path.join(self.stats_dir, f"{md.hash}{tag}.sass")
                if os.path.exists(sass_file):
                    with open(sass_file) as f:
                        text, note = f.read(), None
                else:
                    text, note = disassemble(compiled.asm["cubin"], tool)
                    if text is not None:
                        write_atomically(sass_file, text)
                if text is None:
                    warnings.append(note)
                else:
                    answer["ir"]["sass"] = text
            elif kind in compiled.asm:
                value = compiled.asm[kind]
                answer["ir"][kind] = value if isinstance(value, str) else value.decode("utf-8", "replace")
            else:
                warnings.append(f"Triton produced no {kind}")
        if warnings:
            answer["warnings"] = warnings
        return answer


_PTX_ENTRY_RE = re.compile(r"\.entry\s+([\w$]+)\s*\(([^)]*)\)", re.S)


def launch_info(compiled, signature):
    """What launching the compiled kernel takes, as Triton's own CUDA launcher does it: the
    parameters in PTX order (the signature's without the constexprs, then the hidden scratch
    pointers this Triton appends; a hidden one's buffer is bytes_per_program x programs, or a null
    pointer when 0), 32 x num_warps threads a program, metadata.shared bytes of dynamic shared
    memory, and what needs more than a plain cuLaunchKernel (clusters, cooperative or PDL launches,
    host tensor descriptors). The PTX entry's own parameter count is checked against the list."""
    md = compiled.metadata
    params = [{"name": name, "type": ty} for name, ty in signature.items() if ty != "constexpr"]
    for name in ("global_scratch", "profile_scratch"):
        if hasattr(md, f"{name}_size"):
            params.append({"name": name, "type": "*i8", "hidden": True,
                           "bytes_per_program": int(getattr(md, f"{name}_size") or 0),
                           "align": int(getattr(md, f"{name}_align", 1) or 1)})
    warp_size = int(getattr(md, "warp_size", 32) or 32)
    info = {
        "entry": md.name,
        "num_warps": md.num_warps,
        "threads": md.num_warps * warp_size,
        "num_ctas": int(getattr(md, "num_ctas", 1) or 1),
        "shared_bytes": md.shared,
        "params": params,
        "cooperative": bool(getattr(md, "launch_cooperative_grid", False)),
        "pdl": bool(getattr(md, "launch_pdl", False)),
        "tensor_descriptors": len(getattr(md, "tensordesc_meta", None) or []),
        "ptx_params": None,
    }
    ptx = compiled.asm.get("ptx")
    ptx = ptx.decode("utf-8", "replace") if isinstance(ptx, bytes) else ptx or ""
    entry = next((m for m in _PTX_ENTRY_RE.finditer(ptx) if m.group(1) == md.name), None)
    if entry is None:
        info["problem"] = f"the PTX declares no .entry {md.name}"
    else:
        info["ptx_params"] = entry.group(2).count(".param")
        if info["ptx_params"] != len(params):
            info["problem"] = (
                f"the PTX entry {md.name} takes {info['ptx_params']} parameters, but the signature and the "
                f"scratch pointers make {len(params)}: this Triton ({triton.__version__}) passes arguments the "
                f"worker does not know")
    return info


def backend_error_answer(exc, filename, log):
    text = log or ""
    stage = "ptxas" if type(exc).__name__ == "PTXASError" else "backend"
    message = f"{type(exc).__name__}: {exc}".strip()
    answer = {"ok": False, "kind": "compile", "stage": stage, "error": message, "line": None, "column": None}
    diag = mlir_diagnostic(text, filename) if text else None
    if diag:
        line, column, msg = diag
        answer.update(line=line, column=column, error=f"{msg} ({message})" if msg not in message else message)
    return answer


def write_atomically(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def internal_error(exc):
    return {"ok": False, "kind": "internal", "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", help="Triton cache folder to keep (default: a temporary one)")
    args = parser.parse_args()
    cache_dir = args.cache_dir or os.environ.get("TENSORLENS_TRITON_CACHE_DIR")
    temporary = cache_dir is None
    if temporary:
        cache_dir = tempfile.mkdtemp(prefix="tensorlens-triton-")
    os.makedirs(cache_dir, exist_ok=True)
    worker = Worker(os.path.abspath(cache_dir))
    try:
        for raw in _REQUESTS:
            if not raw.strip():
                continue
            rid = None
            req = None
            try:
                req = json.loads(raw)
                if isinstance(req, dict):
                    rid = req.get("id")
                answer = worker.handle(req)
            except json.JSONDecodeError as e:
                answer = {"ok": False, "kind": "request", "error": f"not JSON: {e}"}
            except RequestError as e:
                answer = {"ok": False, "kind": "request", "error": str(e)}
            except Exception as e:
                answer = internal_error(e)
            except BaseException as e:  # SystemExit from user code, KeyboardInterrupt
                if isinstance(e, KeyboardInterrupt):
                    raise
                answer = internal_error(e)
            answer = dict({"id": rid}, **answer)
            try:
                line = json.dumps(answer, default=str)
            except Exception as e:
                line = json.dumps({"id": rid, "ok": False, "kind": "internal", "error": f"unserializable answer: {e}"})
            _PROTO.write(line + "\n")
            _PROTO.flush()
            if isinstance(req, dict) and req.get("op") == "shutdown" and answer.get("ok"):
                break
    finally:
        if temporary:
            shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
