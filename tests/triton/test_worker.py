"""The Triton worker (server/src/kernels/triton_worker.py) against triton.compile run by hand.

Run with the Python that has triton (tests/triton/run does: .cache/triton/venv/bin/python). Starts
the worker as the server does (`python triton_worker.py`, JSON lines on its stdin and stdout), sends
it every fixture kernel and config in tests/triton/fixtures, and checks its answers against an
oracle computed here, in a separate process: the fixture's kernel source in a real file, imported
normally, compiled with triton.compile in a fresh cache, registers and spills read from Triton's own
ptxas log (TRITON_DUMP_PTXAS_LOG) and cross-checked with cuobjdump -res-usage of the cubin. Also the
compile errors' positions, the IR texts, bad requests and garbage, and that stdout carries only
JSON. Prints the timings (Triton's compile vs the worker's total, the second identical request).

Never imports or runs a fixture file itself: their __main__ sections would need a GPU.
"""

import ast
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(REPO, "server", "src", "kernels", "triton_worker.py")
FIXTURES = os.path.join(HERE, "fixtures")
ARCH = 90

F32 = "*fp32"
F16 = "*fp16"

# Each case: a fixture kernel, its signature (as a launch with torch tensors and Python ints and
# floats would type it) and the configs to compile; None as configs means the kernel's own
# @triton.autotune configs, asked for with "configs": "autotune".
CASES = [
    {"file": "vector_add.py", "kernel": "add_kernel",
     "signature": {"x_ptr": F32, "y_ptr": F32, "out_ptr": F32, "n_elements": "i32", "BLOCK_SIZE": "constexpr"},
     "configs": [({"BLOCK_SIZE": 1024}, {"num_warps": 4, "num_stages": 3}),
                 ({"BLOCK_SIZE": 4096}, {"num_warps": 8, "num_stages": 3}),
                 ({"BLOCK_SIZE": 1024}, {"num_warps": 4, "num_stages": 3}, "pointers")]},
    {"file": "softmax.py", "kernel": "row_softmax_kernel",
     "signature": {"out_ptr": F32, "in_ptr": F32, "in_row_stride": "i32", "out_row_stride": "i32",
                   "n_rows": "i32", "n_cols": "i32", "BLOCK_COLS": "constexpr"},
     "configs": [({"BLOCK_COLS": 1024}, {"num_warps": 8}),
                 ({"BLOCK_COLS": 4096}, {"num_warps": 4, "num_stages": 2})]},
    {"file": "layernorm.py", "kernel": "layernorm_fwd_kernel",
     "signature": {"x_ptr": F16, "y_ptr": F16, "weight_ptr": F16, "bias_ptr": F16, "mean_ptr": F32,
                   "rstd_ptr": F32, "row_stride": "i32", "n_cols": "i32", "eps": "fp32", "BLOCK": "constexpr"},
     "configs": [({"BLOCK": 1024}, {"num_warps": 4}), ({"BLOCK": 8192}, {"num_warps": 8})]},
    {"file": "matmul.py", "kernel": "matmul_kernel",
     "signature": {"a_ptr": F16, "b_ptr": F16, "c_ptr": F16, "M": "i32", "N": "i32", "K": "i32",
                   "stride_am": "i32", "stride_ak": "i32", "stride_bk": "i32", "stride_bn": "i32",
                   "stride_cm": "i32", "stride_cn": "i32"},
     "configs": None},
    {"file": "attention.py", "kernel": "attention_fwd_kernel",
     "signature": {"q_ptr": F16, "k_ptr": F16, "v_ptr": F16, "o_ptr": F16, "seq_len": "i32", "sm_scale": "fp32",
                   "stride_bh": "i32", "stride_tok": "i32"},
     "configs": [({"HEAD_DIM": 64, "BLOCK_Q": 64, "BLOCK_KV": 64}, {"num_warps": 4, "num_stages": 3}),
                 ({"HEAD_DIM": 128, "BLOCK_Q": 128, "BLOCK_KV": 64}, {"num_warps": 8, "num_stages": 2})]},
    {"file": "helper_call.py", "kernel": "bias_gelu_kernel",
     "signature": {"x_ptr": F32, "bias_ptr": F32, "out_ptr": F32, "n_rows": "i32", "n_cols": "i32"},
     "configs": [({"BLOCK_COLS": 256}, {"num_warps": 4})]},
    {"file": "spills.py", "kernel": "big_tile_kernel",
     "signature": {"x_ptr": F32, "out_ptr": F32, "stride": "i32"},
     "configs": [({"ROWS": 64, "COLS": 64}, {"num_warps": 1}), ({"ROWS": 32, "COLS": 64}, {"num_warps": 1})],
     "must_spill": [True, False]},
    {"file": "descriptor.py", "kernel": "descriptor_add_one_kernel",
     "signature": {"a_ptr": F16, "out_ptr": F16, "M": "i32", "N": "i32"},
     "configs": [({"BLOCK": 64}, {"num_warps": 4}, ["a_ptr", "out_ptr", "N"])],
     "global_scratch": True},
]

ERROR_CASES = [
    {"file": "compile_errors.py", "kernel": "bad_dot_kernel", "signature": {"a_ptr": F32, "b_ptr": F32, "c_ptr": F32},
     "constexprs": {"BLOCK": 32}, "at": "tl.dot", "message": "reduction dimension"},
    {"file": "compile_errors.py", "kernel": "bad_arange_kernel", "signature": {"x_ptr": F32, "y_ptr": F32, "width": "i32"},
     "constexprs": {}, "at": "tl.arange", "message": "constexpr", "function": "_load_block", "call_at": "_load_block"},
    {"file": "compile_errors.py", "kernel": "undefined_name_kernel", "signature": {"x_ptr": F32},
     "constexprs": {}, "at": "not_defined_anywhere", "message": "not_defined_anywhere"},
]

# ---------------------------------------------------------------------------------------------
# The source the server sends: the file with every line not needed for the kernels blanked.


def kernel_source(text):
    """Keeps triton imports, @jit-decorated functions (decorators included) and the module-level
    assignments they use; blanks every other line, so that line numbers stay the file's own."""
    tree = ast.parse(text)
    keep = set()
    used = set()
    assigns = []

    def span(node):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return range(first, node.end_lineno + 1)

    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if all(m == "triton" or m.startswith("triton.") for m in mods):
                keep.update(span(node))
        elif isinstance(node, ast.FunctionDef) and any("jit" in ast.unparse(d) or "autotune" in ast.unparse(d)
                                                       or "heuristics" in ast.unparse(d)
                                                       for d in node.decorator_list):
            keep.update(span(node))
            used.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            assigns.append(node)
    changed = True
    while changed:
        changed = False
        for node in assigns:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if names & used and node.lineno not in keep:
                keep.update(span(node))
                used.update(n.id for n in ast.walk(node.value) if isinstance(n, ast.Name))
                changed = True
    lines = text.splitlines()
    return "\n".join(line if i + 1 in keep else "" for i, line in enumerate(lines)) + "\n"


# ---------------------------------------------------------------------------------------------
# The oracle: triton.compile by hand, in its own process.


def oracle_main():
    """Runs in a separate process: reads one job a line on stdin, compiles it with triton.compile
    in a fresh cache and answers one JSON line (registers etc. from Triton's ptxas log, and what
    cuobjdump -res-usage says of the cubin)."""
    import importlib.util

    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    knobs.nvidia.dump_ptxas_log = True
    workdir = tempfile.mkdtemp(prefix="tensorlens-oracle-")
    modules = {}
    try:
        for raw in sys.stdin:
            job = json.loads(raw)
            path = job["file"]
            if path not in modules:
                # A real file with the same lines, imported normally: Triton reads it from disk.
                copy = os.path.join(workdir, f"oracle_{len(modules)}_{os.path.basename(path)}")
                with open(path) as src, open(copy, "w") as dst:
                    dst.write(kernel_source(src.read()))
                spec = importlib.util.spec_from_file_location(f"oracle_{len(modules)}", copy)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                modules[path] = module
            fn = getattr(modules[path], job["kernel"])
            while not isinstance(fn, triton.runtime.jit.JITFunction):
                fn = fn.fn
            names = list(fn.arg_names)
            attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in job["divisible"]}
            signature = dict(job["signature"])
            for name in job["constexprs"]:
                signature[name] = "constexpr"
            signature = {n: signature[n] for n in names}
            knobs.cache.dir = tempfile.mkdtemp(dir=workdir)
            log = io.StringIO()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(log):
                compiled = triton.compile(ASTSource(fn, signature, job["constexprs"], attrs),
                                          target=GPUTarget("cuda", job["arch"], 32), options=job["options"])
            ms = (time.perf_counter() - t0) * 1000.0
            text = log.getvalue()
            regs = re.search(r"Used (\d+) registers", text)
            frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", text)
            cubin = os.path.join(workdir, "k.cubin")
            with open(cubin, "wb") as f:
                f.write(compiled.asm["cubin"])
            usage = subprocess.run([cuobjdump, "-res-usage", cubin], capture_output=True, text=True).stdout
            md = compiled.metadata
            entry = re.search(r"\.entry\s+" + re.escape(md.name) + r"\s*\((.*?)\)\s*(\.reqntid\s+([\d, ]+))?",
                              compiled.asm["ptx"], re.S)
            ptx_params = re.findall(r"\.param\s+((?:\.align\s+\d+\s+)?\.\w+)", entry.group(1)) if entry else None
            reqntid = None
            if entry and entry.group(3):
                reqntid = 1
                for d in entry.group(3).split(","):
                    reqntid *= int(d)
            res = dict(re.findall(r"(\w+):(\d+)", usage.split("Function", 1)[-1]))
            answers.write(json.dumps({
                "registers": int(regs.group(1)), "local_bytes": int(frame.group(1)),
                "spill_stores": int(frame.group(2)), "spill_loads": int(frame.group(3)),
                "shared_bytes": compiled.metadata.shared, "num_warps": compiled.metadata.num_warps,
                "num_stages": compiled.metadata.num_stages,
                "cuobjdump_registers": int(res.get("REG", -1)), "cuobjdump_stack": int(res.get("STACK", -1)),
                "ptx_params": ptx_params, "reqntid": reqntid, "entry": md.name,
                "global_scratch_size": md.global_scratch_size, "profile_scratch_size": md.profile_scratch_size,
                "triton_compile_ms": ms,
            }) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Oracle:

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--oracle"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def compile(self, case, constexprs, options, divisible):
        job = {"file": fixture(case["file"]), "kernel": case["kernel"], "signature": case["signature"],
               "constexprs": constexprs, "options": options, "divisible": divisible, "arch": ARCH}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the oracle process died on {job}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ---------------------------------------------------------------------------------------------
# The worker, driven as the server drives it.


class Worker:

    def __init__(self):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        self.next_id = 1
        self.stdout_lines = []

    def send_raw(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline()
        if not out:
            raise RuntimeError("the worker closed its stdout; stderr:\n" + self.stderr_text()[-3000:])
        self.stdout_lines.append(out)
        return json.loads(out)

    def request(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        t0 = time.perf_counter()
        answer = self.send_raw(json.dumps(dict({"id": rid, "op": op}, **fields)))
        answer["_round_trip_ms"] = (time.perf_counter() - t0) * 1000.0
        if answer.get("id") != rid:
            raise AssertionError(f"answer id {answer.get('id')} to request {rid}")
        return answer

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def close(self):
        answer = self.request("shutdown")
        rest = self.proc.stdout.read()
        self.proc.wait(timeout=30)
        return answer, rest, self.proc.returncode


passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"  FAIL: {what}")
    return cond


def fixture(name):
    return os.path.join(FIXTURES, name)


def compile_request(case, constexprs, options, divisible, want):
    path = fixture(case["file"])
    with open(path) as f:
        text = f.read()
    req = {"filename": path, "source": kernel_source(text), "kernel": case["kernel"],
           "signature": case["signature"], "constexprs": constexprs, "options": options, "arch": ARCH, "want": want}
    if divisible:
        req["divisibility_16"] = divisible
    return req


def kernel_lines(source):
    """Line numbers of the non-blank lines of the blanked source (the kernels and what they use)."""
    return {i + 1 for i, line in enumerate(source.splitlines()) if line.strip()}


def check_ir(answer, case, source_lines, label):
    ir = answer.get("ir", {})
    name = case["kernel"]
    path = fixture(case["file"])
    check("tt.func" in ir.get("ttir", "") and name in ir.get("ttir", ""), f"{label}: ttir has tt.func {name}")
    check("ttg." in ir.get("ttgir", ""), f"{label}: ttgir has ttg ops")
    check(re.search(r"define .*@" + name, ir.get("llir", "")) is not None, f"{label}: llir defines {name}")
    ptx = ir.get("ptx", "")
    check(".version" in ptx and f".entry {name}" in ptx, f"{label}: ptx has .version and .entry {name}")
    check(path in ptx, f"{label}: ptx line info names the file")
    # Every location Triton recorded in the file is a kernel line, so the jit function's source and
    # starting line came out as the file's own.
    locs = {int(m) for m in re.findall(r'loc\("' + re.escape(path) + r'":(\d+):\d+\)', ir.get("ttir", ""))}
    check(locs and locs <= source_lines, f"{label}: ttir locations {sorted(locs - source_lines)} outside the kernel lines")


# The PTX .param type each Triton argument type is passed as.
PTX_PARAM_TYPE = {"i1": ".u8", "i8": ".u8", "i16": ".u16", "i32": ".u32", "i64": ".u64", "u32": ".u32", "u64": ".u64",
                  "fp32": ".f32", "fp64": ".f64"}


def check_launch(answer, case, want, label):
    """The launch facts of a compile answer against the oracle's own compile: the entry and its
    parameters as its PTX declares them, the threads its .reqntid asks for, the dynamic shared
    memory and the hidden scratch buffers of Triton's metadata."""
    launch = answer.get("launch") or {}
    check("problem" not in launch, f"{label}: launch problem {launch.get('problem')}")
    check(launch.get("entry") == want["entry"] == answer.get("name"), f"{label}: entry {launch.get('entry')}")
    params = launch.get("params", [])
    names = [p["name"] for p in params]
    visible = [n for n, t in case["signature"].items() if t != "constexpr"]
    check(names == visible + ["global_scratch", "profile_scratch"], f"{label}: launch params {names}")
    ptx = want["ptx_params"] or []
    check(len(params) == len(ptx) == launch.get("ptx_params"), f"{label}: {len(params)} params, the PTX has {ptx}")
    for param, declared in zip(params, ptx):
        ty = param["type"]
        expected = ".u64" if ty.startswith("*") else PTX_PARAM_TYPE.get(ty)
        check(declared == expected, f"{label}: {param['name']} ({ty}) is {declared} in the PTX, expected {expected}")
    check(launch.get("threads") == 32 * want["num_warps"] == want["reqntid"],
          f"{label}: threads {launch.get('threads')}, .reqntid {want['reqntid']}, num_warps {want['num_warps']}")
    check(launch.get("shared_bytes") == want["shared_bytes"], f"{label}: launch shared {launch.get('shared_bytes')}")
    hidden = {p["name"]: p for p in params if p.get("hidden")}
    for name in ("global_scratch", "profile_scratch"):
        got = hidden.get(name, {}).get("bytes_per_program")
        check(got == want[f"{name}_size"], f"{label}: {name} {got} bytes a program, Triton says {want[f'{name}_size']}")
    if case.get("global_scratch"):
        check(want["global_scratch_size"] > 0, f"{label}: the kernel needs global scratch")
    check(launch.get("num_ctas") == 1 and launch.get("cooperative") is False and launch.get("pdl") is False
          and launch.get("tensor_descriptors") == 0, f"{label}: plain launch {launch}")


def check_sass(answer, case, source_lines, label):
    sass = answer.get("ir", {}).get("sass", "")
    check(re.search(r"/\*[0-9a-f]{4}\*/\s+[A-Z][A-Z0-9.]+", sass) is not None and "EXIT" in sass,
          f"{label}: sass has instructions")
    lines = {int(n) for n in re.findall(r'File "' + re.escape(fixture(case["file"])) + r'", line (\d+)', sass)}
    check(lines and lines <= source_lines, f"{label}: sass line info {sorted(lines - source_lines)} outside the kernel")


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--oracle":
        oracle_main()
        return 0
    started = time.perf_counter()
    import triton
    print(f"triton {triton.__version__}, python {sys.version.split()[0]}, target sm_{ARCH}")

    # The worker and the oracle take turns (each config compiled by hand, then by the worker), so
    # the two timings see the same load on the machine.
    worker = Worker()
    oracle = Oracle()
    version = worker.request("version")
    check(version.get("ok") and version.get("triton") == triton.__version__, f"version answer {version}")
    # The first compile in a process pays ~0.4 s of setup; both get it out of the way.
    warm = worker.request("warm", arch=ARCH)
    check(warm.get("ok"), f"warm-up {warm}")
    oracle.compile(CASES[0], {"BLOCK_SIZE": 128}, {}, [])
    print(f"warm-up compile in a fresh worker: {warm.get('compile_ms')} ms")

    # What each fixture defines, with the autotune configs evaluated by Python.
    for case in CASES:
        path = fixture(case["file"])
        with open(path) as f:
            text = f.read()
        listing = worker.request("kernels", filename=path, source=kernel_source(text))
        entry = next((k for k in listing.get("kernels", []) if k["name"] == case["kernel"]), None)
        def_line = next(i + 1 for i, ln in enumerate(text.splitlines()) if ln.startswith(f"def {case['kernel']}("))
        check(entry is not None and entry["line"] == def_line and entry["column"] == 1,
              f"{case['kernel']}: kernels entry {entry}, def on line {def_line}")
        if case["configs"] is None:
            tuned = (entry or {}).get("autotune") or {}
            case["configs"] = [(c["constexprs"], c["options"]) for c in tuned.get("configs", [])]
            check(len(case["configs"]) == 3 and tuned.get("key") == ["M", "N", "K"], f"autotune listing {tuned}")
            case["autotuned"] = True

    rows = []
    for case in CASES:
        for i, config in enumerate(case["configs"]):
            constexprs, options = config[0], config[1]
            divisible = config[2] if len(config) > 2 else []
            if divisible == "pointers":
                divisible = [n for n, t in case["signature"].items() if t.startswith("*")]
            label = f"{case['kernel']} {constexprs} {options}" + (" div16" if divisible else "")
            want = oracle.compile(case, constexprs, options, divisible)
            check(want["registers"] == want["cuobjdump_registers"],
                  f"{label}: ptxas log says {want['registers']} registers, cuobjdump -res-usage {want['cuobjdump_registers']}")
            check(want["local_bytes"] == want["cuobjdump_stack"],
                  f"{label}: stack frame {want['local_bytes']} vs cuobjdump STACK {want['cuobjdump_stack']}")
            req = compile_request(case, constexprs, options, divisible, ["ttir", "ttgir", "llir", "ptx"])
            source_lines = kernel_lines(req["source"])
            first = worker.request("compile", **req)
            if not check(first.get("ok"), f"{label}: compile answer {str(first)[:3000]}"):
                continue
            for key in ("registers", "spill_stores", "spill_loads", "shared_bytes", "local_bytes", "num_warps",
                        "num_stages"):
                check(first.get(key) == want[key], f"{label}: {key} {first.get(key)} (worker) vs {want[key]} (oracle)")
            check(first.get("arch") == f"sm_{ARCH}" and first.get("name") == case["kernel"], f"{label}: name/arch")
            check(first.get("cache_hit") is False and first.get("stats_source") == "ptxas-log", f"{label}: fresh compile")
            must_spill = case.get("must_spill", [None] * 99)[i]
            if must_spill is not None:
                check((first["spill_stores"] > 0) == must_spill,
                      f"{label}: spill stores {first['spill_stores']}, expected spilling: {must_spill}")
            check_ir(first, case, source_lines, label)
            check_launch(first, case, want, label)
            second = worker.request("compile", **req)
            check(second.get("ok") and second.get("cache_hit") is True and second.get("registers") == first["registers"]
                  and second.get("spill_stores") == first["spill_stores"] and second.get("ir") == first.get("ir"),
                  f"{label}: second identical request {str(second)[:500]}")
            sass = worker.request("compile", **dict(req, want=["sass"]))
            check(sass.get("ok") and set(sass.get("ir", {})) == {"sass"}, f"{label}: sass request {str(sass)[:500]}")
            check_sass(sass, case, source_lines, label)
            rows.append((label, first, second, sass, want))
    oracle.close()

    # The autotuned kernel's configs in one request: the same numbers as one at a time.
    for case in CASES:
        if not case.get("autotuned"):
            continue
        answer = worker.request("compile", configs="autotune", **compile_request(case, {}, {}, None, []))
        results = answer.get("results", [])
        check(answer.get("ok") and len(results) == len(case["configs"]), f"autotune request {str(answer)[:500]}")
        for r in results:
            label = f"{case['kernel']} {r['config']['constexprs']} {r['config']['options']}"
            match = next((row[1] for row in rows if row[0] == label), None)
            check(match is not None and r.get("ok") and r.get("registers") == match["registers"]
                  and r.get("spill_stores") == match["spill_stores"] and r.get("shared_bytes") == match["shared_bytes"],
                  f"autotune result {str(r)[:300]} vs {str(match)[:300]}")
        explicit = worker.request("compile", configs=[{"constexprs": c, "options": o} for c, o in case["configs"][:1]],
                                  **compile_request(case, {}, {}, None, []))
        check(explicit.get("ok") and explicit["results"][0].get("registers") == results[0].get("registers"),
              f"explicit configs request {str(explicit)[:300]}")

    # A newer nvdisasm (the CUDA 13 wheel's, as tests/cuda/setup installs it) marks every local
    # access of a spilling kernel as a spill; Triton's bundled one marks none. A bad path is a note.
    toolkit = subprocess.run(["bash", "tests/cuda/setup"], capture_output=True, text=True, check=True).stdout.strip()
    case = next(c for c in CASES if c["file"] == "spills.py")
    constexprs, options = case["configs"][0]
    req = compile_request(case, constexprs, options, None, ["sass"])
    marked = worker.request("compile", nvdisasm=os.path.join(toolkit, "bin", "nvdisasm"), **req)
    sass = marked.get("ir", {}).get("sass", "")
    local = len(re.findall(r"\b(?:STL|LDL)\b", sass))
    check(marked.get("ok") and local > 0 and sass.count("SpillRefill") == local,
          f"spills with a CUDA 13 nvdisasm: {local} local accesses, {sass.count('SpillRefill')} marked")
    bundled = worker.request("compile", **req).get("ir", {}).get("sass", "")
    check("SpillRefill" not in bundled and len(re.findall(r"\b(?:STL|LDL)\b", bundled)) == local,
          "Triton's bundled nvdisasm: the same local accesses, unmarked")
    bad = worker.request("compile", nvdisasm="/nonexistent/nvdisasm", **req)
    check(bad.get("ok") and "sass" not in bad.get("ir", {}) and "not an executable file" in str(bad.get("warnings")),
          f"a bad nvdisasm path: {str(bad)[:300]}")

    print()
    print(f"{'kernel, config':<92} {'regs':>4} {'spill st/ld':>11} {'shared':>7} {'local':>5} |"
          f" {'oracle':>7} {'triton':>7} {'worker':>7} {'trip':>7} {'ovh':>5} | {'2nd':>5} {'sass':>5}")
    total_triton = total_worker = 0.0
    for label, first, second, sass, want in rows:
        overhead = (first["compile_ms"] - first["triton_ms"]) / first["triton_ms"] * 100.0
        total_triton += first["triton_ms"]
        total_worker += first["compile_ms"]
        print(f"{label:<92} {first['registers']:>4} {first['spill_stores']:>5}/{first['spill_loads']:<5} "
              f"{first['shared_bytes']:>7} {first['local_bytes']:>5} | {want['triton_compile_ms']:>7.1f} "
              f"{first['triton_ms']:>7.1f} {first['compile_ms']:>7.1f} {first['_round_trip_ms']:>7.1f} "
              f"{overhead:>4.1f}% | {second['compile_ms']:>5.1f} {sass['compile_ms']:>5.0f}")
    if total_triton:
        print(f"all configs: triton.compile {total_triton:.0f} ms inside the worker, worker total {total_worker:.0f} ms "
              f"({(total_worker - total_triton) / total_triton * 100.0:.1f}% overhead); columns in ms: oracle = "
              f"triton.compile by hand, triton = Triton's own timer in the worker, worker = the worker's total,"
              f" trip = round trip, 2nd = the same request again (Triton's cache), sass = a request for SASS only")

    # Compile errors land on the offending line of the fixture file.
    path = fixture("compile_errors.py")
    with open(path) as f:
        text = f.read()
    file_lines = text.splitlines()
    for case in ERROR_CASES:
        line = next(i + 1 for i, ln in enumerate(file_lines) if ln.rstrip().endswith(f"# ERROR {case['kernel']}"))
        column = file_lines[line - 1].index(case["at"]) + 1
        req = {"filename": path, "source": kernel_source(text), "kernel": case["kernel"], "signature": case["signature"],
               "constexprs": case["constexprs"], "arch": ARCH}
        answer = worker.request("compile", **req)
        label = f"compile error in {case['kernel']}"
        check(answer.get("ok") is False and answer.get("kind") == "compile", f"{label}: {answer}")
        check(answer.get("line") == line, f"{label}: line {answer.get('line')}, expected {line}")
        check(answer.get("column") == column, f"{label}: column {answer.get('column')}, expected {column}")
        check(case["message"] in answer.get("error", ""), f"{label}: message {answer.get('error')!r}")
        check("Traceback" not in answer.get("error", "") and "code_generator.py" not in answer.get("error", ""),
              f"{label}: no compiler traceback in {answer.get('error')!r}")
        if "function" in case:
            check(answer.get("function") == case["function"], f"{label}: function {answer.get('function')}")
            call = next(i + 1 for i, ln in enumerate(file_lines) if ln.rstrip().endswith(f"# CALL {case['kernel']}"))
            call_col = file_lines[call - 1].index(case["call_at"]) + 1
            check({"function": case["kernel"], "line": call, "column": call_col} in answer.get("trace", []),
                  f"{label}: call site {call}:{call_col} in trace {answer.get('trace')}")
        print(f"{label}: line {answer.get('line')}, column {answer.get('column')}: {answer.get('error')}")

    # The request's text wins over the file on disk (an unsaved buffer): three more lines on top
    # move the error three lines down; and a file that does not exist compiles as well.
    case = ERROR_CASES[0]
    shifted = "\n\n\n" + kernel_source(text)
    answer = worker.request("compile", filename=path, source=shifted, kernel=case["kernel"],
                            signature=case["signature"], constexprs=case["constexprs"], arch=ARCH)
    disk_line = next(i + 1 for i, ln in enumerate(file_lines) if ln.rstrip().endswith(f"# ERROR {case['kernel']}"))
    check(answer.get("line") == disk_line + 3, f"error line {answer.get('line')} in the shifted text, {disk_line} on disk")
    req = compile_request(CASES[0], {"BLOCK_SIZE": 512}, {}, None, ["ptx"])
    answer = worker.request("compile", **dict(req, filename="/nonexistent/untitled-1.py"))
    check(answer.get("ok") and "/nonexistent/untitled-1.py" in answer.get("ir", {}).get("ptx", ""),
          f"a file that does not exist: {str(answer)[:300]}")

    # A source that does not run: its own line; a source that prints, on stdout and on fd 1, that
    # reads stdin (it must not eat the next request), or that calls sys.exit.
    src = "import triton\nimport triton.language as tl\n\n\ndef broken(:\n"
    answer = worker.request("compile", filename="/nowhere/broken.py", source=src, kernel="k", signature={})
    check(answer.get("kind") == "compile" and answer.get("stage") == "source" and answer.get("line") == 5,
          f"syntax error answer {answer}")
    noisy = kernel_source(open(fixture("vector_add.py")).read()).splitlines()
    noisy[0] = ("import os, sys; print('NOISE from print'); os.write(1, b'NOISE from fd 1\\n'); "
                "sys.stdin.read(); os.read(0, 100)")
    req = compile_request(CASES[0], {"BLOCK_SIZE": 256}, {}, None, ["ptx"])
    answer = worker.request("compile", **dict(req, source="\n".join(noisy) + "\n"))
    check(answer.get("ok") and answer.get("cache_hit") is False, f"noisy source answer {str(answer)[:300]}")
    answer = worker.request("compile", filename="/nowhere/exits.py", source="import sys\nsys.exit(3)\n", kernel="k",
                            signature={})
    check(answer.get("kind") == "compile" and answer.get("stage") == "source" and answer.get("line") == 2,
          f"sys.exit in the source: {answer}")

    # Options Triton rejects, and a target ptxas does not know: compile errors without a line.
    answer = worker.request("compile", **compile_request(CASES[0], {"BLOCK_SIZE": 64}, {"num_warps": 3}, None, []))
    check(answer.get("kind") == "compile" and answer.get("stage") == "options" and "power of 2" in answer.get("error", ""),
          f"num_warps 3 answer {answer}")
    answer = worker.request("compile", **dict(compile_request(CASES[0], {"BLOCK_SIZE": 64}, {}, None, []), arch=12))
    check(answer.get("kind") == "compile" and answer.get("stage") == "ptxas" and "sm_12" in answer.get("error", ""),
          f"sm_12 answer {str(answer)[:300]}")

    # Bad requests and garbage get error answers; the worker stays up.
    for line in ["this is not json", "[1, 2, 3]", json.dumps({"id": 77, "op": "frobnicate"})]:
        answer = worker.send_raw(line)
        check(answer.get("ok") is False and answer.get("kind") == "request", f"answer to {line!r}: {answer}")
    bad = [
        dict(compile_request(CASES[0], {"BLOCK_SIZE": 64}, {}, None, []), kernel="no_such_kernel"),
        dict(compile_request(CASES[0], {"BLOCK_SIZE": 64}, {}, None, []), signature={"x_ptr": F32}),
        dict(compile_request(CASES[0], {}, {}, None, [])),
        dict(compile_request(CASES[0], {"BLOCK_SIZE": 64}, {}, None, ["pdf"])),
        dict(compile_request(CASES[0], {"BLOCK_SIZE": 64}, {}, None, []), arch="banana"),
        {"filename": 3},
    ]
    for req in bad:
        answer = worker.request("compile", **req)
        check(answer.get("ok") is False and answer.get("kind") == "request" and answer.get("error"),
              f"bad request answer {answer}")
    answer = worker.request("compile", **dict(compile_request(CASES[0], {"BLOCK_SIZE": 64}, {}, None, []),
                                              signature=dict(CASES[0]["signature"], x_ptr="*float99")))
    check(answer.get("ok") is False and answer.get("kind") in ("request", "compile", "internal"),
          f"unknown type answer {answer}")
    version = worker.request("version")
    check(version.get("ok") is True and version.get("triton") == triton.__version__, f"version after errors {version}")

    shutdown, rest, code = worker.close()
    check(shutdown.get("ok") is True and rest == "" and code == 0, f"shutdown {shutdown}, rest {rest!r}, exit {code}")
    for raw in worker.stdout_lines:
        try:
            json.loads(raw)
            ok = raw.endswith("\n") and "\n" not in raw[:-1]
        except ValueError:
            ok = False
        check(ok, f"stdout line is one JSON object: {raw[:200]!r}")
    err = worker.stderr_text()
    check("NOISE from print" in err and "NOISE from fd 1" in err, "the source's prints went to stderr")
    check("Used " in err, "Triton's ptxas log went to stderr")

    # Without a usable triton (python -S: no site-packages) the worker still answers.
    bare = subprocess.run([sys.executable, "-S", WORKER], capture_output=True, text=True, timeout=60,
                          input='{"id": 1, "op": "version"}\n{"id": 2, "op": "compile"}\n{"id": 3, "op": "shutdown"}\n')
    answers = [json.loads(line) for line in bare.stdout.splitlines()]
    check(bare.returncode == 0 and [a.get("kind") for a in answers] == ["environment", "environment", None]
          and "triton" in answers[0].get("error", ""), f"without triton: {bare.stdout!r} {bare.stderr[-500:]!r}")

    print(f"\n{time.perf_counter() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
