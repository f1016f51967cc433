#!/usr/bin/env python3
"""Harvest facts (names, kinds, prototypes, docs URLs) from the public C headers of GPU libraries.

Sources: NVIDIA's wheels on PyPI (fetched with `pip download --no-deps` into .cache/wheels/headers and
read as zip files) and Debian packages (`apt-get download` + `dpkg -x` into /tmp). Output: one JSON Lines
file per (package, catalog system) under catalog/facts/, in the format of the facts layer (header line,
then one symbol per line, sorted by name, byte-identical on re-runs).

No compiler is needed: a small tri-state preprocessor (branches whose condition cannot be decided are
kept), a comment scanner that keeps doxygen group markers, and a tokenizer/statement splitter that
recognises prototypes, typedefs, enums, structs and #define macros.

Usage: python3 catalog/tools/harvest_headers.py [--only SYSTEM[,SYSTEM]] [--no-download]
"""
from __future__ import annotations

import argparse
import email.parser
import fnmatch
import itertools
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = ROOT / ".cache" / "wheels" / "headers"
DEB_DIR = Path("/tmp/harvest_headers_debs")
FACTS_DIR = ROOT / "catalog" / "facts"
TOOL = "catalog/tools/harvest_headers.py"
MAX_DOWNLOAD = 1 << 30  # skip a wheel larger than ~1 GB

# --------------------------------------------------------------------------------------------------
# What to harvest. Each source yields one output per catalog system; headers are globs relative to the
# package's include directory. Patterns are tried in order; the first declaration of a name wins.

SOURCES = [
    {"type": "wheel", "pkgs": ["nvidia-cuda-runtime"], "outputs": [
        {"system": "cuda-runtime", "headers": ["cuda_runtime_api.h", "driver_types.h", "surface_types.h",
                                               "texture_types.h", "library_types.h"]},
        {"system": "cuda-driver", "headers": ["cuda.h"]},
        {"system": "cuda", "headers": ["device_atomic_functions.h", "sm_*_atomic_functions.h",
                                       "sm_*_intrinsics.h", "cuda_fp16.h", "cuda_bf16.h"]},
    ]},
    # Since CUDA 13 include/device_functions.h is a forwarding stub; the declarations live in
    # crt/device_functions.h, shipped in the nvidia-cuda-crt wheel.
    {"type": "wheel", "pkgs": ["nvidia-cuda-crt"], "outputs": [
        {"system": "cuda", "headers": ["crt/device_functions.h"]},
    ]},
    {"type": "wheel", "pkgs": ["nvidia-cuda-nvrtc"], "outputs": [
        {"system": "nvrtc", "headers": ["nvrtc.h"]},
    ]},
    {"type": "wheel", "pkgs": ["nvidia-cublas"], "outputs": [
        {"system": "cublas", "headers": ["cublas_api.h", "cublas_v2.h", "cublasLt.h"]},
    ]},
    {"type": "wheel", "pkgs": ["nvidia-cudnn-cu13", "nvidia-cudnn-cu12"], "outputs": [
        # cudnn_*_v9.h are byte-identical copies of cudnn_*.h
        {"system": "cudnn", "headers": ["cudnn_graph.h", "cudnn_ops.h", "cudnn_cnn.h", "cudnn_adv.h",
                                        "cudnn_version.h", "cudnn_backend.h", "cudnn.h",
                                        "cudnn_gnn_ops.h", "cudnn_subquadratic_ops.h"]},
    ]},
    {"type": "wheel", "pkgs": ["nvidia-cufft"], "outputs": [
        {"system": "cufft", "headers": ["cufft.h", "cufftXt.h"]},
    ]},
    {"type": "deb", "pkgs": ["opencl-c-headers"], "outputs": [
        {"system": "opencl", "headers": ["CL/cl.h", "CL/cl_ext.h", "CL/cl_platform.h"]},
    ]},
    {"type": "deb", "pkgs": ["libamdhip64-dev"], "outputs": [
        {"system": "rocm-hip", "headers": ["hip/hip_runtime_api.h", "hip/driver_types.h",
                                           "hip/surface_types.h", "hip/texture_types.h"]},
    ]},
]

# Prefixes a #define must start with to count as public API of the system (decoration macros and
# internal helpers are filtered separately).
MACRO_PREFIXES = {
    "cuda-runtime": ("cuda", "CUDART_", "CUDA_"),
    "cuda-driver": ("CU", "cu"),
    "cuda": ("CUDART_",),
    "nvrtc": ("NVRTC", "nvrtc"),
    "cublas": ("CUBLAS", "cublas"),
    "cudnn": ("CUDNN", "cudnn"),
    "cufft": ("CUFFT", "cufft"),
    "opencl": ("CL_", "cl"),
    "rocm-hip": ("HIP", "hip"),
}

# Macros that the tri-state preprocessor treats as known. Everything else is "unknown": a branch that
# depends on it is kept (both sides of an #if/#else), so the union of configurations is harvested.
DEFINED = {"__cplusplus": 201703, "__CUDACC__": 1, "__GNUC__": 12, "__HIP_PLATFORM_AMD__": 1,
           "__HIP_PLATFORM_HCC__": 1, "__linux__": 1}
UNDEFINED = {"__CUDACC_RTC__", "__CUDACC_RTC_MINIMAL__", "__CUDA_API_VERSION_INTERNAL",
             "__CUDA_API_VERSION_INTERNAL_ODR", "__CUDA_API_PER_THREAD_DEFAULT_STREAM",
             "CUDA_API_PER_THREAD_DEFAULT_STREAM", "__CUDART_API_PER_THREAD_DEFAULT_STREAM",
             "CUDA_FORCE_API_VERSION", "__DOXYGEN_ONLY__", "_WIN32", "_WIN64", "_MSC_VER", "_NVHPC_CUDA",
             "__HIP_PLATFORM_NVIDIA__", "__HIP_PLATFORM_NVCC__", "__HIPCC_RTC__", "__CUDA_INCLUDE_COMPILER_INTERNAL_HEADERS__",
             "__UNDEF_CUDA_INCLUDE_COMPILER_INTERNAL_HEADERS_CUDA_RUNTIME_API_H__", "CUDA_ENABLE_DEPRECATED",
             "__CUDA_NO_HALF_CONVERSIONS__", "__CUDA_NO_BFLOAT16_CONVERSIONS__", "__CUDA_NO_HALF_OPERATORS__",
             "__CUDA_NO_BFLOAT16_OPERATORS__", "__CUDA_NO_HALF2_OPERATORS__", "__CUDA_NO_BFLOAT162_OPERATORS__"}

# Export / calling-convention / attribute macros removed from prototypes.
DECORATIONS = {
    "CUDARTAPI", "CUDARTAPI_CDECL", "CUDAAPI", "CUDART_CB", "CUDA_CB", "CUBLASWINAPI", "CUBLASAPI",
    "CUDNNWINAPI", "CUDNNAPI", "CUFFTAPI", "NVRTC_EXPORT", "NVRTCAPI", "CL_API_ENTRY", "CL_API_CALL",
    "CL_CALLBACK", "CL_EXT_PREFIX__VERSION_1_0", "HIPAPI", "HIP_PUBLIC_API", "CUBLASLTAPI",
    "extern", "static", "inline", "__inline", "__inline__", "__forceinline__", "__forceinline",
    "__stdcall", "__cdecl", "EXCLUDE_FROM_RTC", "CUDNN_DEPRECATED", "CUDNN_DEPRECATED_ENUM",
}
KEEP_DUNDER = {"__restrict__", "__restrict", "__half", "__half2", "__nv_bfloat16", "__nv_bfloat162"}
DECOR_RE = re.compile(r"^(__[A-Za-z0-9_]+__|CL_(API|EXT)_(SUFFIX|PREFIX)\w*|__?[A-Z0-9_]*DEPRECATED[A-Z0-9_]*"
                      r"|[A-Z][A-Z0-9_]*_DEPRECATED[A-Z0-9_]*|[A-Z][A-Z0-9_]*(WINAPI|_API|API))$")
DEPRECATED_RE = re.compile(r"DEPRECATED")
C_KEYWORDS = {"if", "else", "while", "for", "return", "sizeof", "switch", "case", "do", "operator",
              "typedef", "struct", "enum", "union", "class", "const", "volatile", "unsigned", "signed",
              "int", "char", "void", "float", "double", "long", "short", "bool", "template", "typename",
              "namespace", "using", "public", "private", "protected", "friend", "virtual", "default"}


def is_decoration(tok: str) -> bool:
    if tok in KEEP_DUNDER:
        return False
    return tok in DECORATIONS or bool(DECOR_RE.match(tok))


# --------------------------------------------------------------------------------------------------
# Docs URLs

def dox(group: str) -> str:
    return group.replace("_", "__")


HIP_PAGES = {  # doxygen group -> page of the ROCm HIP runtime API reference (pages the catalog uses)
    "Device": "device_management", "Execution": "execution_control", "Error": "error_handling",
    "Stream": "stream_management", "Event": "event_management", "Memory": "memory_management",
    "Module": "module_management", "Occupancy": "occupancy", "Graph": "graph_management",
    "Context": "context_management", "Clang": "launch_api",
}
CUDNN_PAGES = {"cudnn_graph.h": "cudnn-graph-library", "cudnn_ops.h": "cudnn-ops-library",
               "cudnn_cnn.h": "cudnn-cnn-library", "cudnn_adv.h": "cudnn-adv-library"}


def docs_url(system: str, sym: dict) -> str:
    group, header, name, kind = sym.get("_group"), sym["_header"], sym["name"], sym["kind"]
    if system == "cuda-runtime":
        if group and group.startswith("CUDART"):
            return f"https://docs.nvidia.com/cuda/cuda-runtime-api/group__{dox(group)}.html"
        return "https://docs.nvidia.com/cuda/cuda-runtime-api/index.html"
    if system == "cuda-driver":
        if group and group.startswith("CUDA"):
            return f"https://docs.nvidia.com/cuda/cuda-driver-api/group__{dox(group)}.html"
        return "https://docs.nvidia.com/cuda/cuda-driver-api/index.html"
    if system == "cuda":
        if group and group.startswith("CUDA_MATH_"):
            return f"https://docs.nvidia.com/cuda/cuda-math-api/cuda_math_api/group__{dox(group)}.html"
        if "atomic" in header and name.startswith("atomic"):
            return "https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#atomic-functions"
        return "https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html"
    if system == "nvrtc":
        if group and re.fullmatch(r"[a-z_]+", group):
            return f"https://docs.nvidia.com/cuda/nvrtc/index.html#group__{dox(group)}"
        return "https://docs.nvidia.com/cuda/nvrtc/index.html"
    if system == "cublas":
        return "https://docs.nvidia.com/cuda/cublas/index.html"
    if system == "cudnn":
        page = CUDNN_PAGES.get(header.rsplit("/", 1)[-1])
        if page:
            return f"https://docs.nvidia.com/deeplearning/cudnn/latest/api/{page}.html"
        return "https://docs.nvidia.com/deeplearning/cudnn/latest/"
    if system == "cufft":
        return "https://docs.nvidia.com/cuda/cufft/index.html"
    if system == "opencl":
        if header.endswith("CL/cl.h") and kind == "function":
            return f"https://registry.khronos.org/OpenCL/sdk/3.0/docs/man/html/{name}.html"
        if header.endswith("cl_ext.h"):
            return "https://registry.khronos.org/OpenCL/specs/3.0-unified/html/OpenCL_Ext.html"
        return "https://registry.khronos.org/OpenCL/specs/3.0-unified/html/OpenCL_API.html"
    if system == "rocm-hip":
        page = HIP_PAGES.get(group or "")
        if page:
            return f"https://rocm.docs.amd.com/projects/HIP/en/latest/reference/hip_runtime_api/modules/{page}.html"
        return "https://rocm.docs.amd.com/projects/HIP/en/latest/"
    raise ValueError(system)


# --------------------------------------------------------------------------------------------------
# Fetching

def log(msg: str) -> None:
    print(msg, file=sys.stderr)


def norm(pkg: str) -> str:
    return pkg.lower().replace("-", "_")


def find_wheel(pkg: str) -> Path | None:
    hits = sorted(WHEEL_DIR.glob(norm(pkg) + "-*.whl"))
    return hits[-1] if hits else None


def fetch_wheel(pkg: str, download: bool) -> tuple[Path | None, str]:
    whl = find_wheel(pkg)
    if whl or not download:
        return whl, "" if whl else "not downloaded (--no-download)"
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    # pip prints "Downloading <file> (<size>)" before the transfer: stop it when the wheel is too big.
    proc = subprocess.Popen([sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
                             "-d", str(WHEEL_DIR), pkg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"Downloading \S+ \(([\d.]+) (kB|MB|GB)\)", line)
        if m:
            size = float(m.group(1)) * {"kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]
            if size > MAX_DOWNLOAD:
                proc.kill()
                proc.wait()
                return None, f"skipped: wheel is {m.group(1)} {m.group(2)} (over ~1 GB)"
    if proc.wait() != 0:
        return None, "pip download failed"
    return find_wheel(pkg), ""


def fetch_deb(pkg: str, download: bool) -> tuple[Path | None, str]:
    DEB_DIR.mkdir(parents=True, exist_ok=True)
    hits = sorted(DEB_DIR.glob(pkg + "_*.deb"))
    if not hits and download:
        r = subprocess.run(["apt-get", "download", pkg], cwd=DEB_DIR, capture_output=True, text=True)
        if r.returncode != 0:
            return None, "apt-get download failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
        hits = sorted(DEB_DIR.glob(pkg + "_*.deb"))
    if not hits:
        return None, "not available"
    deb = hits[-1]
    dest = DEB_DIR / deb.stem
    if not dest.exists():
        subprocess.run(["dpkg", "-x", str(deb), str(dest)], check=True)
    return deb, ""


class Package:
    def __init__(self, name: str, version: str, source: str, files: dict[str, str]):
        self.name, self.version, self.source, self.files = name, version, source, files


def open_wheel(path: Path) -> Package:
    with zipfile.ZipFile(path) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode("utf-8", "replace"))
        files = {}
        for n in z.namelist():
            if n.endswith(".h") and "/include/" in n:
                files[n.split("/include/", 1)[1]] = z.read(n).decode("utf-8", "replace")
    return Package(meta["Name"], meta["Version"], path.name, files)


def open_deb(path: Path) -> Package:
    fields = subprocess.run(["dpkg-deb", "-f", str(path), "Package", "Version"], capture_output=True,
                            text=True, check=True).stdout
    info = dict(line.split(": ", 1) for line in fields.strip().splitlines())
    root = DEB_DIR / path.stem / "usr" / "include"
    files = {}
    for p in sorted(root.rglob("*.h")):
        files[str(p.relative_to(root))] = p.read_text("utf-8", "replace")
    return Package(info["Package"], info["Version"], path.name, files)


# --------------------------------------------------------------------------------------------------
# Comments -> markers. Markers are kept in the text as \x01...\x01 so that they follow the
# preprocessor's branch selection and keep their position relative to declarations.

COMMENT_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])\'|/\*.*?\*/|//[^\n]*', re.S)
DOC_CMD_RE = re.compile(r"[\\@](defgroup|addtogroup|ingroup)\s+(\w+)|[\\@](deprecated)\b|(@\{)|(@\})")


def comment_markers(text: str) -> str:
    trailing = text.startswith(("/**<", "///<", "//!<", "/*!<"))
    events = []
    has_group_def = False
    for m in DOC_CMD_RE.finditer(text):
        if m.group(1):
            if m.group(1) in ("defgroup", "addtogroup"):
                has_group_def = True
                events.append(("def", m.group(2)))
            else:
                events.append(("in", m.group(2)))
        elif m.group(3):
            events.append(("dep", ""))
        elif m.group(4):
            events.append(("open", ""))
        elif m.group(5):
            events.append(("close", ""))
    out = []
    for ev, arg in events:
        if has_group_def and ev in ("in", "dep"):
            continue  # \ingroup inside a group definition names the parent group
        if ev == "dep" and trailing:
            ev = "depprev"
        out.append(f"\x01{ev}:{arg}\x01")
    return " " + "".join(out) + " " if out else " "


def strip_comments(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\\\n", "")

    def repl(m: re.Match) -> str:
        s = m.group(0)
        if s.startswith(("/*", "//")):
            return comment_markers(s)
        return s

    return COMMENT_RE.sub(repl, text)


# --------------------------------------------------------------------------------------------------
# Tri-state preprocessor

YES, NO, MAYBE = "yes", "no", "maybe"
PP_TOKEN_RE = re.compile(r"\s*(defined|[A-Za-z_]\w*|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|&&|\|\||==|!=|<=|>=|<<|>>|[()!<>+\-*/%?:~&|^,])")


def eval_condition(expr: str) -> str:
    expr = re.sub(r"\x01[^\x01]*\x01", " ", expr).strip()
    toks, pos = [], 0
    while pos < len(expr):
        m = PP_TOKEN_RE.match(expr, pos)
        if not m:
            if expr[pos:].strip() == "":
                break
            return MAYBE
        toks.append(m.group(1))
        pos = m.end()
    out, unknown = [], []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "defined":
            if i + 1 < len(toks) and toks[i + 1] == "(":
                name, i = toks[i + 2], i + 4
            else:
                name, i = toks[i + 1], i + 2
            if name in DEFINED:
                out.append("1")
            elif name in UNDEFINED:
                out.append("0")
            else:
                unknown.append("d_" + name)
                out.append("d_" + name)
            continue
        if re.match(r"[A-Za-z_]", t):
            if t in DEFINED:
                out.append(str(DEFINED[t]))
            elif t in UNDEFINED:
                out.append("0")
            else:
                unknown.append("v_" + t)
                out.append("v_" + t)
        elif t == "&&":
            out.append(" and ")
        elif t == "||":
            out.append(" or ")
        elif t == "!":
            out.append(" not ")
        elif t in ("?", ":"):
            return MAYBE
        elif re.match(r"\d", t):
            out.append(str(int(t.rstrip("uUlL"), 0)))
        else:
            out.append(t)
        i += 1
    py = " ".join(out)
    names = sorted(set(unknown))
    if len(names) > 6:
        return MAYBE
    results = set()
    choices = {n: ((0, 1) if n.startswith("d_") else (0, 1, 10 ** 9)) for n in names}
    for combo in itertools.product(*(choices[n] for n in names)):
        try:
            results.add(bool(eval(py, {"__builtins__": {}}, dict(zip(names, combo)))))
        except Exception:
            return MAYBE
        if len(results) == 2:
            return MAYBE
    return YES if results == {True} else NO


class Define:
    def __init__(self, name: str, params: str | None, value: str, deprecated: bool):
        self.name, self.params, self.value, self.deprecated = name, params, value, deprecated


def preprocess(text: str) -> list:
    """Returns a list of items: str (code text) or Define, in order, for the kept branches."""
    items: list = []
    stack: list[list] = []  # [state, taken_yes, any_maybe]

    def active() -> bool:
        return all(s[0] != NO for s in stack)

    for line in text.split("\n"):
        s = line.lstrip()
        if not s.startswith("#"):
            if active():
                items.append(line + "\n")
            continue
        m = re.match(r"#\s*(\w+)\s*(.*)", s)
        if not m:
            continue
        d, rest = m.group(1), m.group(2)
        markers = "".join(re.findall(r"\x01[^\x01]*\x01", rest))
        rest_clean = re.sub(r"\x01[^\x01]*\x01", " ", rest).strip()
        if d in ("if", "ifdef", "ifndef"):
            if d == "if":
                st = eval_condition(rest_clean)
            else:
                name = rest_clean.split()[0] if rest_clean.split() else ""
                st = YES if name in DEFINED else NO if name in UNDEFINED else MAYBE
                if d == "ifndef":
                    st = {YES: NO, NO: YES, MAYBE: MAYBE}[st]
            stack.append([st, st == YES, st == MAYBE])
        elif d == "elif" and stack:
            top = stack[-1]
            if top[1]:
                top[0] = NO
            else:
                st = eval_condition(rest_clean)
                if st == YES and top[2]:
                    st = MAYBE
                top[0] = st
                top[1] = top[1] or st == YES
                top[2] = top[2] or st == MAYBE
        elif d == "else" and stack:
            top = stack[-1]
            top[0] = NO if top[1] else (MAYBE if top[2] else YES)
        elif d == "endif" and stack:
            stack.pop()
        elif d == "define" and active():
            dm = re.match(r"([A-Za-z_]\w*)(\([^)]*\))?\s*(.*)", rest)
            if dm:
                value = dm.group(3)
                dep = "\x01depprev:\x01" in value or "\x01dep:\x01" in value
                value = re.sub(r"\x01[^\x01]*\x01", " ", value)
                value = " ".join(value.split())
                params = dm.group(2)
                items.append(Define(dm.group(1), " ".join(params.split()) if params else None, value, dep))
            continue
        if markers and active():
            items.append(markers + "\n")
    return items


# --------------------------------------------------------------------------------------------------
# Tokenizer and statement parser

TOKEN_RE = re.compile(r'\s*(\x01[^\x01]*\x01|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'|[A-Za-z_]\w*'
                      r'|\d[\w.]*|::|->|\.\.\.|<<|>>|&&|\|\||[^\s])')


class Tok:
    __slots__ = ("text", "space", "body")

    def __init__(self, text: str, space: bool):
        self.text, self.space = text, space


def tokenize(code: str) -> list[Tok]:
    toks, pos = [], 0
    while True:
        m = TOKEN_RE.match(code, pos)
        if not m:
            break
        text = m.group(1)
        if text == "__DEF_IF_HOST":  # expands to `;` (device) or `{ }` (host): ends a declaration
            text = ";"
        toks.append(Tok(text, m.start(1) > pos))
        pos = m.end()
    return toks


def render(toks: list[Tok], rename: tuple[str, str] | None = None) -> str:
    """Prototype text: tokens as written, whitespace collapsed to single spaces, decorations removed,
    __dv(x) default-value macros turned into ` = x`."""
    out: list[str] = []
    pending_space = False
    i = 0
    while i < len(toks):
        t = toks[i]
        txt = t.text
        if txt.startswith("\x01"):
            pending_space = pending_space or t.space
            i += 1
            continue
        if txt in ("__dv", "__dparm") and i + 1 < len(toks) and toks[i + 1].text == "(":
            j = match_paren(toks, i + 1)
            out.append(" = " + render(toks[i + 2:j]))
            pending_space = False
            i = j + 1
            continue
        if txt in ("__attribute__", "__declspec", "DEPRECATED", "__align__", "__builtin_align__") or (
                is_decoration(txt) and i + 1 < len(toks) and toks[i + 1].text == "(" and txt.startswith("__")):
            if i + 1 < len(toks) and toks[i + 1].text == "(":
                i = match_paren(toks, i + 1) + 1
            else:
                i += 1
            pending_space = True
            continue
        if txt == "[" and i + 1 < len(toks) and toks[i + 1].text == "[":
            j = i + 2
            while j < len(toks) and not (toks[j].text == "]" and j + 1 < len(toks) and toks[j + 1].text == "]"):
                j += 1
            i = j + 2
            pending_space = True
            continue
        if is_decoration(txt) or (txt == '"C"' and out and out[-1] == "extern"):
            pending_space = pending_space or t.space
            i += 1
            continue
        if rename and txt == rename[0]:
            txt = rename[1]
        if out and (t.space or pending_space) and not out[-1].endswith(("(", "[")) and txt not in (")", ",", "]"):
            out.append(" ")
        out.append(txt)
        pending_space = False
        i += 1
    return "".join(out).strip()


def match_paren(toks: list[Tok], i: int) -> int:
    opener = toks[i].text
    closer = {"(": ")", "{": "}", "[": "]"}[opener]
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == opener:
            depth += 1
        elif toks[j].text == closer:
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def strip_decorations(toks: list[Tok]) -> list[Tok]:
    out, i = [], 0
    while i < len(toks):
        t = toks[i].text
        if t in ("__attribute__", "__declspec", "DEPRECATED", "__dv", "__dparm") or is_decoration(t) or t == "__device_builtin__":
            if i + 1 < len(toks) and toks[i + 1].text == "(" and (t.startswith("__") or t == "DEPRECATED"):
                i = match_paren(toks, i + 1) + 1
            else:
                i += 1
            continue
        if t == "alignas" and i + 1 < len(toks) and toks[i + 1].text == "(":
            i = match_paren(toks, i + 1) + 1
            continue
        out.append(toks[i])
        i += 1
    return out


def has_deprecation(toks: list[Tok], name: str) -> bool:
    for k, t in enumerate(toks):
        if t.text == name or t.text.startswith(("\x01", '"')):
            continue
        if DEPRECATED_RE.search(t.text) and (is_decoration(t.text) or t.text == "DEPRECATED"):
            return True
        if t.text == "deprecated" and k > 0 and toks[k - 1].text in ("(", "["):
            return True
    return False


def ident(s: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_]\w*", s)) and s not in C_KEYWORDS


class Harvester:
    def __init__(self, system: str):
        self.system = system
        self.symbols: dict[str, dict] = {}
        self.defines: dict[str, Define] = {}
        self.define_meta: dict[str, dict] = {}
        self.last: dict | None = None

    # -- symbol bookkeeping
    def add(self, name: str, kind: str, header: str, group: str | None, signature: str | None = None,
            deprecated: bool = False, toks: list[Tok] | None = None) -> dict | None:
        if not ident(name):
            return None
        if name in self.symbols:
            return None
        sym = {"name": name, "kind": kind, "_header": header, "_group": group}
        if signature:
            sym["signature"] = signature
        if toks is not None:
            sym["_toks"] = toks
        if deprecated or (group or "").upper().endswith("DEPRECATED"):
            sym["deprecated"] = True
        self.symbols[name] = sym
        return sym

    # -- parsing one header
    def harvest(self, header: str, text: str) -> None:
        items = preprocess(strip_comments(text))
        groups: list[str | None] = []
        pending_def: str | None = None
        doc = {"in": None, "dep": False}
        code_parts: list[str] = []
        # Defines are interleaved with code: tokenise code between them, keep a combined stream.
        stream: list = []
        for it in items:
            if isinstance(it, Define):
                if code_parts:
                    stream.extend(tokenize("".join(code_parts)))
                    code_parts = []
                stream.append(it)
            else:
                code_parts.append(it)
        if code_parts:
            stream.extend(tokenize("".join(code_parts)))

        def cur_group() -> str | None:
            if doc["in"]:
                return doc["in"]
            for g in reversed(groups):
                if g:
                    return g
            return None

        def marker(t: str) -> None:
            nonlocal pending_def
            ev, _, arg = t.strip("\x01").partition(":")
            if ev == "def":
                pending_def = arg
            elif ev == "open":
                groups.append(pending_def if pending_def else (groups[-1] if groups else None))
                pending_def = None
            elif ev == "close":
                if groups:
                    groups.pop()
            elif ev == "in":
                doc["in"] = arg
            elif ev == "dep":
                doc["dep"] = True
            elif ev == "depprev" and self.last is not None:
                self.last["deprecated"] = True

        ns_stack: list[str] = []  # 'extern' | 'ns' for transparent / named scopes
        stmt: list[Tok] = []
        i = 0
        n = len(stream)
        while i < n:
            t = stream[i]
            if isinstance(t, Define):
                if not stmt:
                    self.on_define(t, header, cur_group(), doc["dep"])
                    doc["in"], doc["dep"] = None, False
                else:
                    self.defines.setdefault(t.name, t)
                i += 1
                continue
            if t.text.startswith("\x01"):
                if not stmt or t.text.startswith("\x01depprev"):
                    marker(t.text)
                i += 1
                continue
            if t.text == "}" and not stmt:
                if ns_stack:
                    ns_stack.pop()
                i += 1
                continue
            if t.text == ";":
                self.on_statement(stmt, header, cur_group(), doc["dep"], in_ns="ns" in ns_stack)
                stmt = []
                doc["in"], doc["dep"] = None, False
                i += 1
                continue
            if t.text == "{":
                words = [x.text for x in stmt if not x.text.startswith("\x01")]
                if words[:2] == ["extern", '"C"'] and len(words) == 2:
                    ns_stack.append("extern")
                    stmt = []
                    i += 1
                    continue
                if words and words[0] in ("namespace", "inline") and "namespace" in words[:2]:
                    ns_stack.append("ns")
                    stmt = []
                    i += 1
                    continue
                # body: find the matching brace (over tokens only; Defines inside bodies are skipped)
                depth, j, body = 0, i, []
                while j < n:
                    x = stream[j]
                    if isinstance(x, Define):
                        j += 1
                        continue
                    if x.text == "{":
                        depth += 1
                    elif x.text == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    if j > i:
                        body.append(x)
                    j += 1
                wb = [x.text for x in stmt if not x.text.startswith("\x01") and not is_decoration(x.text)]
                if wb and "(" in wb and wb[0] not in ("typedef", "struct", "enum", "union", "class") and (
                        wb[-1] in (")", "const", "noexcept", "override")):
                    # function definition: record its head like a prototype, skip the body
                    self.on_statement(stmt, header, cur_group(), doc["dep"], in_ns="ns" in ns_stack)
                    stmt = []
                    doc["in"], doc["dep"] = None, False
                    i = j + 1
                    continue
                stmt.append(Tok("{", True))
                stmt.append(Tok("\x02BODY", False))
                stmt[-1].body = body  # type: ignore[attr-defined]
                stmt.append(Tok("}", False))
                i = j + 1
                continue
            stmt.append(t)
            i += 1

    # -- #define
    def on_define(self, d: Define, header: str, group: str | None, doc_dep: bool) -> None:
        self.defines.setdefault(d.name, d)
        self.define_meta.setdefault(d.name, {"header": header, "group": group, "dep": doc_dep or d.deprecated})

    def finish_defines(self) -> None:
        prefixes = MACRO_PREFIXES[self.system]
        renames: dict[str, str] = {}
        for name, d in self.defines.items():
            if d.params is None:
                m = re.fullmatch(r"(?:[A-Za-z_]\w*\s*\(\s*)?([A-Za-z_]\w*)\s*\)?", d.value)
                if m and m.group(1) != name and (m.group(1) in self.symbols or name in self.symbols) and (
                        self.symbols.get(m.group(1), self.symbols.get(name, {})).get("kind") == "function"):
                    renames[name] = m.group(1)
        for x, y in sorted(renames.items()):
            sx, sy = self.symbols.get(x), self.symbols.get(y)
            versioned = re.sub(r"_v\d+", "", y) == x  # cublasSgemm -> cublasSgemm_v2, cublasChemv_64 -> cublasChemv_v2_64
            if sx is None and sy is not None:
                meta = self.define_meta.get(x, {})
                sig = render(sy["_toks"], rename=(y, x)) if "_toks" in sy else sy.get("signature")
                new = {"name": x, "kind": "function", "_header": sy["_header"], "_group": sy["_group"],
                       "signature": sig}
                if sy.get("deprecated") or meta.get("dep"):
                    new["deprecated"] = True
                if versioned or y not in self.symbols:
                    new["aliases"] = [y]
                    if versioned:
                        del self.symbols[y]
                self.symbols[x] = new
            elif sx is not None:
                if sy is not None and versioned:
                    sig = render(sy["_toks"], rename=(y, x)) if "_toks" in sy else sy.get("signature")
                    sx["signature"] = sig
                    del self.symbols[y]
                if sy is None or versioned:
                    sx.setdefault("aliases", []).append(y)
        for name, d in sorted(self.defines.items()):
            if name in renames or name in self.symbols:
                continue
            if re.fullmatch(r"[A-Za-z_]\w*", d.value) and d.value != name and re.sub(r"_v\d+", "", d.value) == name:
                continue  # rename to a versioned entry point that no header here declares

            if not name.startswith(prefixes) or name.startswith("_") or is_decoration(name):
                continue
            v = d.value
            if not v and d.params is None:
                continue  # include guards, feature switches and decoration macros defined empty
            if re.search(r"__attribute__|__declspec|__stdcall|__cdecl|\[\[|dllexport|dllimport|visibility|"
                         r"\bextern\b|_DEPRECATED\b|__host__|__device__|\bDEPRECATED\(", v):
                continue
            if re.fullmatch(r"[A-Z0-9_]*_H_?|[A-Z0-9_]*_H_INCLUDED|[A-Z0-9_]*_INCLUDED_?", name):
                continue
            meta = self.define_meta.get(name, {"header": "", "group": None, "dep": False})
            if d.params is not None:
                sig = f"#define {name}{d.params}"
            else:
                sig = f"#define {name} {v}" if len(v) <= 80 else f"#define {name}"
            self.add(name, "macro", meta["header"], meta["group"], sig, meta["dep"])

    # -- one top-level statement
    def on_statement(self, stmt: list[Tok], header: str, group: str | None, doc_dep: bool, in_ns: bool) -> None:
        self.last = None
        toks = [t for t in stmt if not t.text.startswith("\x01")]
        if not toks or in_ns:
            return
        words = [t.text for t in toks]
        if words[0] in ("template", "using", "friend", "namespace", "static_assert", "#"):
            return
        if words[0] == "typedef":
            self.on_typedef(toks, header, group, doc_dep)
            return
        core = strip_decorations(toks)
        cw = [t.text for t in core]
        if cw and cw[0] in ("enum", "struct", "union", "class") and "\x02BODY" in cw:
            k = 1
            while k < len(cw) and cw[k] in ("class", "struct"):
                k += 1
            tag = cw[k] if k < len(cw) and ident(cw[k]) else None
            body = next(t for t in core if t.text == "\x02BODY").body  # type: ignore[attr-defined]
            if tag and (not tag.startswith("_") or self.system == "cuda"):
                self.add(tag, "type", header, group, None, doc_dep or has_deprecation(toks, tag))
            if cw[0] == "enum":
                self.on_enum(body, header, group)
            return
        if "(" in words and "\x02BODY" not in words[: words.index("(")]:
            self.on_function(toks, header, group, doc_dep)

    def on_function(self, toks: list[Tok], header: str, group: str | None, doc_dep: bool) -> None:
        # find the first '(' at depth 0 that follows an identifier that is not a decoration macro
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.text == "(":
                prev = toks[i - 1].text if i else ""
                if prev in ("__attribute__", "__declspec", "DEPRECATED", "__dv", "__dparm", "__align__") or (
                        is_decoration(prev) and prev.startswith("__")):
                    i = match_paren(toks, i) + 1
                    continue
                break
            if t.text in ("=", "\x02BODY", "operator"):
                return
            i += 1
        if i >= len(toks) or i == 0:
            return
        name = toks[i - 1].text
        if not ident(name) or is_decoration(name) or (i >= 2 and toks[i - 2].text in ("::", "~")):
            return
        ret = [t.text for t in toks[: i - 1] if not is_decoration(t.text) and not t.text.startswith("\x01")
               and t.text not in ("__device_builtin__", '"C"')]
        if not ret or toks[i + 1: i + 2] and toks[i + 1].text == "*":
            return
        if self.system != "cuda" and name.startswith("_"):
            return
        if self.system == "cuda" and (not name.startswith(("__", "atomic")) or "internal" in name
                                      or re.match(r"__cuda[A-Z]", name)):
            return
        close = match_paren(toks, i)
        proto = toks[: close + 1]
        sig = render(proto)
        dep = doc_dep or has_deprecation(toks, name)
        sym = self.add(name, "function", header, group, sig, dep, toks=proto)
        if sym:
            self.last = sym

    def on_typedef(self, toks: list[Tok], header: str, group: str | None, doc_dep: bool) -> None:
        words = [t.text for t in toks]
        if "\x02BODY" in words:
            bi = words.index("\x02BODY")
            body = toks[bi].body  # type: ignore[attr-defined]
            after = [t for t in toks[bi + 2:]]
            names = []
            depth = 0
            for k, t in enumerate(after):
                if t.text in ("(", "["):
                    depth += 1
                elif t.text in (")", "]"):
                    depth -= 1
                elif depth == 0 and ident(t.text) and not is_decoration(t.text) and (
                        k + 1 == len(after) or after[k + 1].text in (",", "[")):
                    names.append(t.text)
            for nm in names:
                if not nm.startswith("_") or self.system == "cuda":
                    s = self.add(nm, "type", header, group, None, doc_dep or has_deprecation(toks, nm))
                    self.last = s or self.last
            if "enum" in words[:bi]:
                self.on_enum(body, header, group)
            return
        # function pointer typedef: typedef R (CONV *Name)(params);
        name = None
        for k in range(len(toks) - 2):
            if toks[k].text == "(":
                j = k + 1
                while j < len(toks) and (is_decoration(toks[j].text) or toks[j].text == "*"):
                    j += 1
                if j < len(toks) and ident(toks[j].text) and j + 1 < len(toks) and toks[j + 1].text == ")" and any(
                        toks[x].text == "*" for x in range(k + 1, j)):
                    name = toks[j].text
                break
        if name is None:
            cand = [t.text for t in toks if ident(t.text) and not is_decoration(t.text)]
            # last identifier before an array suffix or the end
            end = len(toks)
            for k, t in enumerate(toks):
                if t.text == "[":
                    end = k
                    break
            cand = [t.text for t in toks[:end] if ident(t.text) and not is_decoration(t.text)]
            if len(cand) < 2:
                return
            name = cand[-1]
        if name.startswith("_") and self.system != "cuda":
            return
        sig = render(toks)
        s = self.add(name, "type", header, group, sig, doc_dep or has_deprecation(toks, name))
        self.last = s or self.last

    def on_enum(self, body: list, header: str, group: str | None) -> None:
        entry: list[Tok] = []
        last: dict | None = None

        def flush() -> None:
            nonlocal last, entry
            toks = [t for t in entry if not t.text.startswith("\x01")]
            if toks and ident(toks[0].text) and not toks[0].text.startswith("_"):
                name = toks[0].text
                rest = toks[1:]
                sig = None
                if any(t.text == "=" for t in rest):
                    sig = render(toks)
                s = self.add(name, "constant", header, group, sig, has_deprecation(toks, name))
                last = s
            entry = []

        depth = 0
        for t in body:
            if t.text.startswith("\x01"):
                if t.text.startswith("\x01depprev") or t.text.startswith("\x01dep:"):
                    if t.text.startswith("\x01depprev") and last is not None and not [x for x in entry if not x.text.startswith("\x01")]:
                        last["deprecated"] = True
                    elif t.text.startswith("\x01depprev") and entry:
                        entry.append(Tok("CUDART_DEPRECATED", True))
                continue
            if t.text in ("(", "{", "["):
                depth += 1
            elif t.text in (")", "}", "]"):
                depth -= 1
            if t.text == "," and depth == 0:
                flush()
                continue
            entry.append(t)
        flush()

    def result(self) -> list[dict]:
        self.finish_defines()
        out = []
        for name in sorted(self.symbols):
            s = self.symbols[name]
            rec = {"name": name, "kind": s["kind"]}
            if s.get("signature"):
                rec["signature"] = s["signature"]
            rec["docs"] = docs_url(self.system, s)
            if s.get("aliases"):
                rec["aliases"] = sorted(set(s["aliases"]))
            if s.get("deprecated"):
                rec["deprecated"] = True
            out.append(rec)
        return out


# --------------------------------------------------------------------------------------------------

def select_headers(pkg: Package, patterns: list[str]) -> list[str]:
    chosen = []
    for pat in patterns:
        for path in sorted(pkg.files):
            if fnmatch.fnmatchcase(path, pat) and path not in chosen:
                chosen.append(path)
    return chosen


def write_facts(pkg: Package, system: str, records: list[dict], suffix: str) -> Path:
    FACTS_DIR.mkdir(parents=True, exist_ok=True)
    fname = f"{norm(pkg.name)}-{pkg.version}{suffix}.jsonl"
    path = FACTS_DIR / fname
    head = {"package": pkg.name, "version": pkg.version, "source": pkg.source, "tool": TOOL,
            "language": "c", "system": system}
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(head, ensure_ascii=False) + "\n")
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated catalog system ids")
    ap.add_argument("--no-download", action="store_true", help="use only wheels/debs already present")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    status = 0
    for src in SOURCES:
        systems = [o["system"] for o in src["outputs"]]
        if only and not only.intersection(systems):
            continue
        pkg = None
        notes = []
        for name in src["pkgs"]:
            if src["type"] == "wheel":
                path, note = fetch_wheel(name, not args.no_download)
                if path:
                    pkg = open_wheel(path)
            else:
                path, note = fetch_deb(name, not args.no_download)
                if path:
                    pkg = open_deb(path)
            if pkg:
                break
            notes.append(f"{name}: {note}")
        if pkg is None:
            log(f"SKIP {'/'.join(systems)}: " + "; ".join(notes))
            status = 1
            continue
        multi = len(src["outputs"]) > 1
        for k, out in enumerate(src["outputs"]):
            if only and out["system"] not in only:
                continue
            h = Harvester(out["system"])
            headers = select_headers(pkg, out["headers"])
            missing = [p for p in out["headers"] if not any(fnmatch.fnmatchcase(x, p) for x in pkg.files)]
            for hdr in headers:
                h.harvest(hdr, pkg.files[hdr])
            records = h.result()
            suffix = f".{out['system']}" if multi and k > 0 else ""
            path = write_facts(pkg, out["system"], records, suffix)
            counts: dict[str, int] = {}
            for r in records:
                counts[r["kind"]] = counts.get(r["kind"], 0) + 1
            desc = ", ".join(f"{c} {kd}" for kd, c in sorted(counts.items()))
            print(f"{path.relative_to(ROOT)}: {len(records)} symbols ({desc}); headers: {', '.join(headers)}"
                  + (f"; missing: {', '.join(missing)}" if missing else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
