#!/usr/bin/env python3
"""Harvests facts (public names, kinds, signatures, docs URLs) from Python packages, statically.

    python3 catalog/tools/harvest_python.py PACKAGE[==VERSION] [...] [--wheel-dir DIR] [--out catalog/facts]

For each PyPI distribution the tool takes a wheel (or an sdist) from --wheel-dir, downloading it with
`pip download --no-deps` when none is there yet, reads its `.py` and `.pyi` files in memory with `ast`
(the package is never imported), resolves the public API (``__all__``, re-exports, star imports,
stubs of C extensions) and writes ``<out>/<package>-<version>.jsonl`` in the format of
catalog/facts (header line, then one symbol a line, sorted by name): names, kinds, signatures, docs
URLs, and the types the annotations state (`returns`, `bases`, `params`; see catalog/README.md).
Standard library only.

The output is deterministic: the same archive gives a byte-identical file.
"""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections import deque
from dataclasses import dataclass, field

TOOL = "catalog/tools/harvest_python.py"
REPO = pathlib.Path(__file__).resolve().parent.parent.parent
DEFAULT_WHEEL_DIR = REPO / ".cache" / "wheels" / "harvest"
DEFAULT_OUT = REPO / "catalog" / "facts"

MAC = "macosx_14_0_arm64"
MAX_DEFAULT = 40  # defaults longer than this are shown as `...`
MAX_PARAM_TEXT = 60  # `params`: longer defaults are `...`, longer annotations are left out
MAX_ALIASES = 10
MAX_DEPTH = 9  # components of a public module path
MAX_WALKS_PER_MODULE = 3  # public paths under which one module's contents are listed

# ---------------------------------------------------------------------------------------------------------
# Per-package settings.
#   platform: download a wheel for this platform (macOS arm64 wheels hold the same Python files as the
#             linux ones and are much smaller for torch/tensorflow; mlx ships macOS wheels only)
#   sdist:    download the source distribution instead of a wheel
#   roots:    import roots to harvest (default: top_level.txt or the archive's top-level packages)
#   exclude:  public-looking module prefixes that are implementation, not API
#   walk_fs:  False: only modules reached through re-exports from the roots are walked, not every file
#   module_reexports: plain modules (not only packages) re-export what they import from private modules
#   extra_all: module -> list of (module, suffix-to-skip) whose public names the module adds to its
#             __all__ at run time (torch's loops over dir(_C) and dir(_C._VariableFunctions))
# ---------------------------------------------------------------------------------------------------------
PACKAGES: dict[str, dict] = {
    "torch": {
        "platform": MAC,
        "roots": ["torch"],
        "exclude": ["torch.testing._internal", "torch.utils.benchmark.examples", "torch.include",
                    "torch.share", "torch.bin", "torch.lib"],
        "extra_all": {"torch": [("torch._C", "Base"), ("torch._C._VariableFunctions", None)]},
    },
    "tensorflow": {
        "platform": MAC,
        "roots": ["tensorflow"],
        "walk_fs": False,
        "exclude": ["tensorflow.compat.v2", "tensorflow.compat.v1.compat", "tensorflow.python",
                    "tensorflow.core", "tensorflow.compiler", "tensorflow.tsl", "tensorflow.include",
                    "tensorflow.keras"],
    },
    "mlx": {"platform": MAC, "roots": ["mlx"]},
    "keras": {"roots": ["keras"], "exclude": ["keras.src"]},
    "google-cloud-aiplatform": {"roots": ["google.cloud.aiplatform", "vertexai"],
                                "exclude": ["google.cloud.aiplatform.compat", "google.cloud.aiplatform.v1",
                                            "google.cloud.aiplatform.v1beta1"]},
    "azure-ai-ml": {"roots": ["azure.ai.ml"]},
    "cupy": {"sdist": True, "roots": ["cupy", "cupyx"]},
    "cupy-cuda12x": {"roots": ["cupy", "cupyx"], "exclude": ["cupy.testing._loops", "cupy_backends"]},
    "deepspeed": {"sdist": True, "roots": ["deepspeed"]},
    "onnx": {"roots": ["onnx"], "exclude": ["onnx.backend.test", "onnx.reference.ops"]},
    "vllm": {"roots": ["vllm"], "exclude": ["vllm.third_party", "vllm.benchmarks"]},
    "triton": {"roots": ["triton"], "exclude": ["triton.backends.nvidia.include", "triton.backends.amd.include"]},
    "lightning": {"roots": ["lightning"], "exclude": ["lightning.app", "lightning.fabric.utilities.testing",
                                                       "lightning.pytorch.demos"]},
    "transformers": {"roots": ["transformers"], "exclude": ["transformers.commands"],
                     # modular_*.py are templates for the code generator; convert_* are one-off scripts
                     "skip": r"^(modular_|convert_)"},
    "openai": {"roots": ["openai"]},
    "wandb": {"roots": ["wandb"], "exclude": ["wandb.vendor", "wandb.proto", "wandb.sdk.internal"]},
    "coremltools": {"roots": ["coremltools"], "exclude": ["coremltools.test"]},
    "sagemaker-core": {"roots": ["sagemaker.core"]},
    "sagemaker-train": {"roots": ["sagemaker.train"]},
    "sagemaker-serve": {"roots": ["sagemaker.serve"]},
    "sagemaker-mlops": {"roots": ["sagemaker.mlops"]},
    "flax": {"roots": ["flax"]},
    "optax": {"roots": ["optax"]},
    "orbax-checkpoint": {"roots": ["orbax.checkpoint"], "exclude": ["orbax.checkpoint.testing",
                                                                      "orbax.checkpoint.test_utils"],
                         # orbax/checkpoint/checkpointers.py and its kin re-export from orbax.checkpoint._src
                         "module_reexports": True},
    "chex": {"roots": ["chex"]},
    "equinox": {"roots": ["equinox"], "exclude": ["equinox.internal"]},
}

# `returns` the packages' annotations do not give but whose answer is certain: each entry says why.
# Only names without a harvested `returns` take these.
CURATED_RETURNS = {
    # torch/_tensor.py defines these in Python without annotations; each returns what the named
    # torch function gives (torch.split, torch.norm, torch.stft, torch.istft, Tensor.unflatten) or self
    "torch.Tensor.split": "tuple[torch.Tensor, ...]",
    "torch.Tensor.norm": "torch.Tensor",
    "torch.Tensor.stft": "torch.Tensor",
    "torch.Tensor.istft": "torch.Tensor",
    "torch.Tensor.unflatten": "torch.Tensor",
    "torch.Tensor.share_memory_": "torch.Tensor",  # returns self
    # builds and returns a torch.utils.hooks.RemovableHandle
    "torch.Tensor.register_hook": "torch.utils.hooks.RemovableHandle",
    "torch.Tensor.register_post_accumulate_grad_hook": "torch.utils.hooks.RemovableHandle",
    # a generator yielding (prefix, module) pairs, unannotated in torch/nn/modules/module.py
    "torch.nn.Module.named_modules": "Iterator[tuple[str, torch.nn.Module]]",
}

TESTISH = re.compile(r"^(tests?|conftest|test_.*|.*_tests?)$")
ENUM_BASES = {"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "ReprEnum"}
TRIVIAL_BASES = {"object", "ABC", "Generic", "Protocol", "metaclass"}
UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")

# `returns`: how annotations are normalized (see catalog/README.md, "Facts files")
BUILTIN_TYPES = {"int", "float", "str", "bool", "bytes", "complex", "object", "bytearray", "slice", "range"}
TYPE_WRAPPERS = {"Annotated", "Final", "ClassVar", "Required", "NotRequired", "ReadOnly"}
CONTAINERS = {"tuple": "tuple", "Tuple": "tuple", "list": "list", "List": "list", "Sequence": "list",
              "MutableSequence": "list", "dict": "dict", "Dict": "dict", "OrderedDict": "dict", "Mapping": "dict",
              "MutableMapping": "dict", "Iterator": "Iterator", "Iterable": "Iterator", "Generator": "Iterator"}


def norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "_", dist).lower()


# ---------------------------------------------------------------------------------------------------------
# Getting and reading the archive
# ---------------------------------------------------------------------------------------------------------

def find_archive(dist: str, wheel_dir: pathlib.Path, sdist: bool, version: str | None = None) -> pathlib.Path | None:
    """The newest archive of `dist` in wheel_dir (of exactly `version` when given)."""
    key = norm(dist)
    found = []
    for path in sorted(wheel_dir.iterdir()) if wheel_dir.is_dir() else []:
        name = path.name
        if name.endswith(".whl"):
            stem = name.split("-")[0]
        elif name.endswith(".tar.gz") or name.endswith(".zip"):
            stem = name.rsplit("-", 1)[0]
        else:
            continue
        if norm(stem) == key and (version is None or archive_version(name) == version):
            found.append(path)
    if not found:
        return None
    wheels = [p for p in found if p.name.endswith(".whl")]
    pool = wheels if wheels and not sdist else found
    return sorted(pool, key=lambda p: (version_key(archive_version(p.name)), p.name))[-1]


def version_key(v: str) -> tuple:
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in re.split(r"[.+-]", v))


def archive_version(name: str) -> str:
    if name.endswith(".whl"):
        return name.split("-")[1]
    base = name[:-7] if name.endswith(".tar.gz") else name[:-4]
    return base.rsplit("-", 1)[1]


def download(spec: str, wheel_dir: pathlib.Path, conf: dict) -> str:
    """`pip download` of `spec` (`torch` or `torch==2.15.0`); returns the errors, or "" when it worked."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    dist = spec.partition("==")[0]
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheel_dir)]
    attempts = []
    if conf.get("sdist"):
        attempts.append(base + [f"--no-binary={dist}", spec])
    if conf.get("platform"):
        attempts.append(base + ["--only-binary=:all:", "--platform", conf["platform"],
                                "--python-version", "3.11", spec])
    attempts.append(base + ["--only-binary=:all:", spec])
    attempts.append(base + ["--only-binary=:all:", "--platform", MAC, "--python-version", "3.11", spec])
    attempts.append(base + [f"--no-binary={dist}", spec])
    errors = []
    for cmd in attempts:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            return ""
        last = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        errors.append(last[-1] if last else proc.stderr.strip()[-200:])
    return "; ".join(dict.fromkeys(errors))


def read_archive(path: pathlib.Path) -> tuple[dict[str, bytes], list[str]]:
    """Returns ({relative path: bytes} of .py/.pyi files, top_level.txt names)."""
    files: dict[str, bytes] = {}
    top: list[str] = []
    if path.name.endswith(".whl") or path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            for n in names:
                if n.endswith(".dist-info/top_level.txt"):
                    top = zf.read(n).decode().split()
            strip = ""
            if path.name.endswith(".zip"):
                strip = names[0].split("/")[0] + "/"
            for n in names:
                if n.endswith((".py", ".pyi")):
                    rel = n[len(strip):] if strip and n.startswith(strip) else n
                    files[rel] = zf.read(n)
    else:
        with tarfile.open(path) as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
            for m in members:
                if not m.name.endswith((".py", ".pyi")):
                    continue
                parts = m.name.split("/", 1)
                if len(parts) < 2:
                    continue
                rel = parts[1]
                if rel.startswith("src/"):
                    rel = rel[4:]
                data = tf.extractfile(m)
                if data is not None:
                    files[rel] = data.read()
    # wheels may hold packages under NAME.data/purelib or platlib
    out = {}
    for rel, data in files.items():
        m = re.match(r"^[^/]+\.data/(?:purelib|platlib)/(.*)$", rel)
        if m:
            rel = m.group(1)
        elif ".dist-info/" in rel or ".data/" in rel:
            continue
        out[rel] = data
    return out, top


# ---------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------

@dataclass(eq=False)
class Def:
    kind: str            # function | class | enum | constant | attribute | type
    mod: str
    name: str
    node: ast.AST | None = field(repr=False)
    source: str = field(repr=False)
    stub_extra: list = field(default_factory=list)  # class nodes from a .pyi to merge methods from
    is_stub: bool = False
    overloads: list = field(default_factory=list, repr=False)  # the other @overload stubs of a function
    stub_sources: dict = field(default_factory=dict, repr=False)  # id(stub_extra node) -> its .pyi source
    deprecated: str | None = None  # the message of its `@deprecated(...)` decorator


@dataclass(eq=False)
class Module:
    name: str
    is_pkg: bool
    bindings: dict = field(default_factory=dict)   # name -> ("def", Def) | ("from", mod, attr) | ("module", mod) | ("expr", node) | ("other",)
    stars: list = field(default_factory=list)
    all_names: list | None = None
    all_partial: bool = False
    redundant: set = field(default_factory=set)    # `from x import A as A`
    typing_only: set = field(default_factory=set)  # bound only under `if TYPE_CHECKING:`, absent at run time
    deleted: set = field(default_factory=set)      # `del name` at module level, not bound again after
    # JAX's `_deprecations = {name: (message, value or None)}` served by a module `__getattr__`
    deprecations: dict = field(default_factory=dict)
    deprecation_getattr: bool = False
    deprecated: dict = field(default_factory=dict)  # public name -> version it was deprecated in ("" unknown)


def module_name(rel: str) -> tuple[str, bool, bool] | None:
    if rel.endswith(".pyi"):
        stem, stub = rel[:-4], True
    else:
        stem, stub = rel[:-3], False
    parts = stem.split("/")
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts), is_pkg, stub


def split_params(text: str) -> list:
    """Splits `a, b=(1, 2), c` at top-level commas."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
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
    return parts


def is_overload(node) -> bool:
    for d in node.decorator_list:
        n = d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None)
        if n == "overload":
            return True
    return False


def deco_names(node) -> list[str]:
    out = []
    for d in node.decorator_list:
        if isinstance(d, ast.Call):
            d = d.func
        out.append(ast.unparse(d))
    return out


def constant_text(node: ast.AST) -> str | None:
    """The text of a string constant, also of implicit concatenations and `+` of string constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = constant_text(node.left), constant_text(node.right)
        return a + b if a is not None and b is not None else None
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


# "deprecated in JAX v0.8.2", "deprecated since 2.1", "deprecated as of version 4.40", "deprecated in v5"
SINCE = re.compile(r"deprecated\s+(?:in|since|as\s+of|starting\s+(?:in|from))\s+(?:(?:the\s+)?(?:version|release)\s+|"
                   r"[A-Z][A-Za-z]+\s+)?v?(\d+(?:\.\d+){1,2})\b", re.IGNORECASE)


def deprecated_since(message: str) -> str:
    """The version a deprecation notice says the deprecation started in, or ""."""
    m = SINCE.search(message or "")
    return m.group(1) if m else ""


def deprecation_notice(node) -> str | None:
    """The message of a `@deprecated("...")` decorator (typing_extensions / warnings.deprecated and the
    packages' own decorators of that name), "" when it has none, None when the definition has none."""
    for d in getattr(node, "decorator_list", []):
        f = d.func if isinstance(d, ast.Call) else d
        last = ast.unparse(f).rpartition(".")[2]
        if last not in ("deprecated", "deprecate"):
            continue
        if isinstance(d, ast.Call):
            texts = [constant_text(a) for a in d.args] + [constant_text(k.value) for k in d.keywords]
            return " ".join(t for t in texts if t)
        return ""
    return None


def field_spec(value: ast.AST | None):
    """A dataclass field's right-hand side: (in the constructor?, default node or None, keyword-only?).
    `field(...)` (dataclasses, attrs) and pydantic's `Field(...)` (whose first argument is the
    default, `...` meaning required) read through their keywords; any other value is the default."""
    if not (isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] in ("field", "Field")):
        return True, value, False
    kws = {k.arg: k.value for k in value.keywords if k.arg}
    if getattr(kws.get("init"), "value", True) is False:
        return False, None, False
    kw_only = getattr(kws.get("kw_only"), "value", False) is True
    default = kws.get("default")
    if default is None and value.args and ast.unparse(value.func).split(".")[-1] == "Field":
        default = value.args[0]
    if isinstance(default, ast.Constant) and default.value is Ellipsis:
        default = None
    if default is None and (kws.get("default_factory") is not None or kws.get("factory") is not None):
        default = ast.Constant(...)
    return True, default, kw_only


def assign_kind(target: str, value: ast.AST | None, annotation: ast.AST | None, stub: bool) -> str | None:
    """Kind of a module-level assignment, or None when it is not part of the API by itself."""
    if annotation is not None and ast.unparse(annotation).split(".")[-1] == "TypeAlias":
        return "type"
    if isinstance(value, ast.Subscript):
        base = ast.unparse(value.value).split(".")[-1]
        if base in {"Union", "Optional", "Callable", "Literal", "Annotated", "Type", "Tuple", "Dict", "List",
                    "Sequence", "Mapping"}:
            return "type"
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr) and not UPPER.match(target):
        return "type"
    if isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] in {"TypeVar", "NewType",
                                                                                   "ParamSpec"}:
        return "type"
    if UPPER.match(target):
        return "constant"
    if stub and annotation is not None:
        return "attribute"
    return None


class ModuleReader:
    def __init__(self, name: str, is_pkg: bool, source: str, stub: bool, tree: ast.Module):
        self.m = Module(name, is_pkg)
        self.source = source
        self.stub = stub
        self.pkg = name if is_pkg else name.rpartition(".")[0]
        self.all_parts: list = []
        self.all_seen = False
        self.typing = False    # inside `if TYPE_CHECKING:`
        self.bound: set = set()  # names the statement being read binds
        self.runtime: set = set()  # names bound outside TYPE_CHECKING blocks
        self.graveyard: dict = {}  # what `del` took away
        self.walk(tree.body)
        self.revive()

    def revive(self):
        """A name the module `del`s but serves again from its own `__getattr__` (torch's
        `del BuildExtension`, then `if name == "BuildExtension": return ...`) is still there."""
        getattr_fn = self.m.bindings.get("__getattr__")
        if not self.graveyard or getattr_fn is None or getattr_fn[0] != "def" or \
                not isinstance(getattr_fn[1].node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        served = {n.value for n in ast.walk(getattr_fn[1].node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        for name, binding in self.graveyard.items():
            if name in served and name not in self.m.bindings:
                self.m.bindings[name] = binding
                self.m.deleted.discard(name)

    def absolute(self, level: int, module: str | None) -> str:
        if level == 0:
            return module or ""
        base = self.pkg.split(".") if self.pkg else []
        if level > 1:
            base = base[: len(base) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    def bind(self, name: str, binding: tuple):
        self.bound.add(name)
        b = self.m.bindings
        old = b.get(name)
        if old is not None:
            if binding[0] == "other" and old[0] != "other":
                return
            if old[0] == "def" and binding[0] == "def" and old[1].node is not None and \
                    getattr(old[1], "_overload", False) and getattr(binding[1], "_overload", False):
                return  # among @overload stubs keep the first; the implementation replaces them
        b[name] = binding

    def walk(self, body: list):
        for node in body:
            if isinstance(node, ast.If):
                test = ast.unparse(node.test)
                checking = test.endswith("TYPE_CHECKING")
                negated = checking and test.startswith("not ")
                outer = self.typing
                self.typing = outer or (checking and not negated)
                self.walk(node.body)
                self.typing = outer or negated
                self.walk(node.orelse)
                self.typing = outer
                continue
            self.bound = set()
            self.walk_one(node)
            for name in self.bound:
                if self.typing:
                    if name in self.m.typing_only or name not in self.runtime:
                        self.m.typing_only.add(name)
                else:
                    self.runtime.add(name)
                    self.m.typing_only.discard(name)
                    self.m.deleted.discard(name)

    def walk_one(self, node):
        if True:
            if isinstance(node, ast.Delete):
                # `del jax_core`: the name is gone from the module after this line. A private name
                # (`del _src_core`) stays bound: it is no API either way, and the values captured from
                # it before (a `_deprecations` table's) still resolve through it.
                for t in node.targets:
                    for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                        if isinstance(e, ast.Name) and e.id in self.m.bindings and not e.id.startswith("_"):
                            self.graveyard[e.id] = self.m.bindings[e.id]
                            del self.m.bindings[e.id]
                            self.m.redundant.discard(e.id)
                            self.m.typing_only.discard(e.id)
                            self.runtime.discard(e.id)
                            self.m.deleted.add(e.id)
                return
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
                if target == "_deprecations" and isinstance(node.value, ast.Dict):
                    self.read_deprecations(node.value)
                elif target == "__getattr__" and isinstance(node.value, ast.Call) and \
                        ast.unparse(node.value.func).endswith("deprecation_getattr"):
                    self.m.deprecation_getattr = True
            if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                self.walk(node.body)
                for h in node.handlers:
                    self.walk(h.body)
                self.walk(node.orelse)
                self.walk(node.finalbody)
            elif isinstance(node, ast.With):
                self.walk(node.body)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                old = self.m.bindings.get(node.name)
                overloaded = old and old[0] == "def" and getattr(old[1], "_overload", False)
                if overloaded and is_overload(node):
                    old[1].overloads.append(node)
                    return
                d = Def("function", self.m.name, node.name, node, self.source)
                d.deprecated = deprecation_notice(node)
                d._overload = is_overload(node)
                if overloaded:
                    d.overloads = [old[1].node] + old[1].overloads  # the implementation after its stubs
                self.bind(node.name, ("def", d))
            elif isinstance(node, ast.ClassDef):
                kind = "class"
                for base in node.bases:
                    if ast.unparse(base).split(".")[-1] in ENUM_BASES:
                        kind = "enum"
                self.bind(node.name, ("def", Def(kind, self.m.name, node.name, node, self.source,
                                                 is_stub=self.stub, deprecated=deprecation_notice(node))))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.bind(alias.asname, ("module", alias.name))
                        if alias.asname == alias.name:
                            self.m.redundant.add(alias.asname)
                    else:
                        top = alias.name.split(".")[0]
                        self.bind(top, ("module", top))
            elif isinstance(node, ast.ImportFrom):
                src = self.absolute(node.level, node.module)
                for alias in node.names:
                    if alias.name == "*":
                        self.m.stars.append(src)
                        continue
                    local = alias.asname or alias.name
                    self.bind(local, ("from", src, alias.name))
                    if alias.asname and alias.asname == alias.name:
                        self.m.redundant.add(local)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                ann = node.annotation if isinstance(node, ast.AnnAssign) else None
                for t in targets:
                    if isinstance(t, ast.Name):
                        if t.id == "__all__":
                            self.all_assign(value, reset=True)
                            continue  # the loop over targets
                        if isinstance(value, (ast.Name, ast.Attribute)) and ann is None:
                            self.bind(t.id, ("expr", value))
                            continue
                        kind = assign_kind(t.id, value, ann, self.stub)
                        if kind:
                            self.bind(t.id, ("def", Def(kind, self.m.name, t.id, node, self.source)))
                        else:
                            # a value the API only exposes when it is named (in __all__ or by an import)
                            wrapped = None
                            if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("add_docstr") \
                                    and value.args:
                                wrapped = value.args[0]
                            kind = "function" if wrapped is not None else "attribute"
                            if isinstance(value, ast.Call) and "to_raw_op(" in ast.unparse(value):
                                kind = "function"  # tf.raw_ops.X = tf_export(...)(to_raw_op(x))
                            self.bind(t.id, ("other", Def(kind, self.m.name, t.id, None, self.source), wrapped))
                    elif isinstance(t, (ast.Tuple, ast.List)):
                        for e in t.elts:
                            if isinstance(e, ast.Name):
                                self.bind(e.id, ("other",))
            elif type(node).__name__ == "TypeAlias":
                self.bind(node.name.id, ("def", Def("type", self.m.name, node.name.id, node, self.source)))
            elif isinstance(node, ast.AugAssign):
                if isinstance(node.target, ast.Name) and node.target.id == "__all__":
                    self.all_assign(node.value, reset=False)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                f = node.value.func
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "__all__":
                    if f.attr == "extend" and node.value.args:
                        self.all_assign(node.value.args[0], reset=False)
                    elif f.attr == "append" and node.value.args:
                        self.all_assign(ast.List(elts=[node.value.args[0]]), reset=False)
            elif isinstance(node, ast.For):
                # `for x in [...]: __all__.append(x)` and similar loops: cannot follow
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and \
                            sub.value.id == "__all__":
                        self.m.all_partial = True

    def read_deprecations(self, value: ast.Dict):
        """JAX's table of names a module's `__getattr__` serves: {name: (message, value)}; a value of
        None means the name is gone (accessing it raises AttributeError with the message)."""
        for k, v in zip(value.keys, value.values):
            if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                continue
            if not (isinstance(v, ast.Tuple) and len(v.elts) == 2):
                continue
            message = constant_text(v.elts[0]) or ""
            if not deprecated_since(message):
                # the table's comments date its entries: `# Deprecated in v0.8.2; finalized in v0.10.0.`
                lines = self.source.splitlines()[value.lineno - 1:k.lineno - 1]
                dated = [c for c in lines if c.strip().startswith("#") and deprecated_since(c)]
                if dated:
                    message += " " + dated[-1].strip()
            fn = v.elts[1]
            removed = isinstance(fn, ast.Constant) and fn.value is None
            self.m.deprecations[k.value] = (message or "", None if removed else fn)

    def all_assign(self, value: ast.AST | None, reset: bool):
        if reset:
            self.all_parts = []
            self.m.all_partial = False
        self.all_seen = True
        self.collect_all(value)
        self.m.all_names = self.all_parts

    def collect_all(self, value):
        if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
            for e in value.elts:
                if isinstance(e, ast.Constant) and isinstance(e.value, str):
                    self.all_parts.append(e.value)
                elif isinstance(e, ast.Starred):
                    self.collect_all(e.value)
                else:
                    self.m.all_partial = True
        elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            self.collect_all(value.left)
            self.collect_all(value.right)
        elif isinstance(value, ast.Attribute) and value.attr == "__all__":
            self.all_parts.append(("__all__of", ast.unparse(value.value)))
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
                value.func.id in {"list", "tuple", "sorted"} and value.args:
            self.collect_all(value.args[0])
        else:
            self.m.all_partial = True


def apply_deprecations(m: Module):
    """A module whose `__getattr__` serves JAX's `_deprecations` table: a name the table lists and the
    module does not bind at run time is gone when its value is None (the stub or a TYPE_CHECKING
    import that names it does not make it exist) and deprecated otherwise, bound to that value."""
    if not m.deprecation_getattr:
        return
    for name, (message, value) in m.deprecations.items():
        b = m.bindings.get(name)
        if b is not None and name not in m.typing_only:
            continue  # a real attribute: the module's __getattr__ is never asked
        if value is None:
            m.bindings.pop(name, None)
            m.redundant.discard(name)
            m.deleted.add(name)
            continue
        if b is None and isinstance(value, (ast.Name, ast.Attribute)):
            m.bindings[name] = ("expr", value)
        m.deprecated[name] = deprecated_since(message)


def merge_stub(py: Module, pyi: Module) -> Module:
    """A .py module and its .pyi: real definitions and imports of the .py win; the stub fills in
    names the .py only assigns (C functions wrapped at run time) and methods of classes."""
    for name, b in pyi.bindings.items():
        old = py.bindings.get(name)
        if old is None and name in py.deleted:
            continue  # `del name` in the .py: the stub's name does not exist at run time
        if old is None or old[0] == "other":
            py.bindings[name] = b
        elif old[0] == "expr" and b[0] == "def":
            py.bindings[name] = b
        elif old[0] == "def" and b[0] == "def" and old[1].kind in ("class", "enum") and \
                b[1].kind in ("class", "enum"):
            old[1].stub_extra.append(b[1].node)
            old[1].stub_sources[id(b[1].node)] = b[1].source
    for s in pyi.stars:
        if s not in py.stars:
            py.stars.append(s)
    if py.all_names is None and pyi.all_names is not None:
        py.all_names, py.all_partial = pyi.all_names, pyi.all_partial
    py.redundant |= pyi.redundant - py.deleted
    py.deprecations = py.deprecations or pyi.deprecations
    py.deprecation_getattr = py.deprecation_getattr or pyi.deprecation_getattr
    return py


# ---------------------------------------------------------------------------------------------------------
# Resolving the public API
# ---------------------------------------------------------------------------------------------------------

class Package:
    def __init__(self, files: dict[str, bytes], conf: dict, top: list[str]):
        self.conf = conf
        self.modules: dict[str, Module] = {}
        self.parse_errors: list[str] = []
        py_mods: dict[str, Module] = {}
        stub_mods: dict[str, Module] = {}
        for rel in sorted(files):
            info = module_name(rel)
            if info is None:
                continue
            name, is_pkg, stub = info
            try:
                source = files[rel].decode("utf-8", errors="replace")
                tree = ast.parse(source)
            except (SyntaxError, ValueError) as err:
                self.parse_errors.append(f"{rel}: {err.__class__.__name__}")
                continue
            mod = ModuleReader(name, is_pkg, source, stub, tree).m
            (stub_mods if stub else py_mods)[name] = mod
        for name in sorted(set(py_mods) | set(stub_mods)):
            if name in py_mods and name in stub_mods:
                self.modules[name] = merge_stub(py_mods[name], stub_mods[name])
            else:
                self.modules[name] = py_mods.get(name) or stub_mods[name]
        self.stub_mods = {n for n in stub_mods if n not in py_mods}
        for mod in self.modules.values():
            apply_deprecations(mod)
        self.children: dict[str, list[str]] = {}
        for name in self.modules:
            parent = name.rpartition(".")[0]
            if parent:
                self.children.setdefault(parent, []).append(name)
        # namespace packages (no __init__.py): make the intermediate levels known
        for name in list(self.modules):
            parts = name.split(".")
            for i in range(1, len(parts)):
                anc = ".".join(parts[:i])
                if anc not in self.modules:
                    self.modules[anc] = Module(anc, True)
                    self.children.setdefault(".".join(parts[: i - 1]), []).append(anc) if i > 1 else None
                    self.children.setdefault(anc, [])
                    if ".".join(parts[: i + 1]) not in self.children[anc]:
                        self.children[anc].append(".".join(parts[: i + 1]))
        for v in self.children.values():
            v.sort()
        roots = conf.get("roots")
        if not roots:
            roots = [t for t in top if t in self.modules and not t.startswith("_")]
        if not roots:
            roots = sorted({n.split(".")[0] for n in self.modules if not n.split(".")[0].startswith("_")})
        self.roots = [r for r in roots if r in self.modules]
        self.exclude = conf.get("exclude", [])
        for mod, extra in conf.get("extra_all", {}).items():
            m = self.modules.get(mod)
            if m is not None:
                m.extra_all = extra
        self.memo: dict = {}
        self.active: set = set()
        self.export_memo: dict = {}
        self.export_active: set = set()

    # -- resolution -------------------------------------------------------------------------------------
    def resolve(self, mod: str, name: str):
        key = (mod, name)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            return None
        self.active.add(key)
        try:
            res = self._resolve(mod, name)
        finally:
            self.active.discard(key)
        self.memo[key] = res
        return res

    def _resolve(self, mod: str, name: str):
        m = self.modules.get(mod)
        if m is None:
            return None
        b = m.bindings.get(name)
        if b is not None:
            if b[0] == "def":
                return ("def", b[1])
            if b[0] == "from":
                r = self.resolve_from(b[1], b[2])
                if r is not None:
                    return r
                if b[1].split(".")[0] not in self.roots and external_symbol(f"{b[1]}.{b[2]}"):
                    # `from jax.nn import relu` in flax.linen: another harvested package's symbol
                    return ("external", f"{b[1]}.{b[2]}")
            elif b[0] == "module":
                if b[1] in self.modules:
                    return ("module", b[1])
            elif b[0] == "expr":
                r = self.resolve_expr(mod, b[1])
                if r is not None:
                    return r
            elif b[0] == "other" and len(b) > 1:
                if b[2] is not None:
                    r = self.resolve_expr(mod, b[2])
                    if r is not None and r[0] == "def" and r[1].kind == "function":
                        return r
                return ("def", b[1])
        for star in m.stars:
            ex = self.exports(star)
            if name in ex:
                return ex[name]
        sub = f"{mod}.{name}"
        if sub in self.modules:
            return ("module", sub)
        return None

    def resolve_from(self, src: str, attr: str):
        if src in self.modules:
            r = self.resolve(src, attr)
            if r is not None:
                return r
        sub = f"{src}.{attr}"
        if sub in self.modules:
            return ("module", sub)
        return None

    def resolve_expr(self, mod: str, node: ast.AST):
        if isinstance(node, ast.Name):
            return self.resolve(mod, node.id) if (mod, node.id) not in self.active else None
        if isinstance(node, ast.Attribute):
            base = self.resolve_expr(mod, node.value)
            if base is None:
                dotted = ast.unparse(node.value)
                if dotted in self.modules:
                    base = ("module", dotted)
            if base is not None and base[0] == "module":
                return self.resolve(base[1], node.attr)
        return None

    def all_names(self, m: Module) -> list[str] | None:
        names = m.all_names
        extra = getattr(m, "extra_all", None)
        if names is None and not extra:
            return None
        out: list[str] = []
        for item in names or []:
            if isinstance(item, tuple):
                target = self.resolve_expr(m.name, ast.parse(item[1], mode="eval").body)
                if target and target[0] == "module":
                    sub_all = self.all_names(self.modules[target[1]])
                    out.extend(sub_all if sub_all is not None else self.default_public(self.modules[target[1]]))
            else:
                out.append(item)
        if m.all_partial and not extra:
            out.extend(self.default_public(m))
        for src, skip_suffix in extra or []:
            sm = self.modules.get(src)
            if sm is None:
                continue
            for n in self.default_public(sm):
                if skip_suffix and n.endswith(skip_suffix):
                    continue
                out.append(n)
        return list(dict.fromkeys(out))

    def default_public(self, m: Module) -> list[str]:
        out = []
        for name, b in m.bindings.items():
            if name.startswith("_"):
                continue
            if b[0] == "def":
                out.append(name)
            elif b[0] == "expr" or name in m.redundant:
                out.append(name)
            elif b[0] in ("from", "module") and self.private_module_alias(m, name):
                continue  # `import jax._src.core as jax_core`: a private module under a local name
            elif b[0] in ("from", "module") and (m.is_pkg or self.conf.get("module_reexports") and
                                                  b[0] == "from" and not self.public_module(b[1])):
                # a package re-exports what it imports from its own subtree (`from .linear import Linear`)
                # or from implementation modules (`from jax._src.api import jit`), not what it imports
                # from other public modules (`from torch import Tensor` in torch.fft)
                if b[1] == m.name or b[1].startswith(m.name + ".") or not self.public_module(b[1]):
                    out.append(name)
        for star in m.stars:
            out.extend(self.exports(star).keys())
        return list(dict.fromkeys(out))

    def private_module_alias(self, m: Module, name: str) -> bool:
        """Whether `name` names one of the package's private modules under another name (`import
        jax._src.api as jax_api`, `from jax._src import core as jax_core`): a module's local handle
        on its implementation, not its API. A private module imported under its own name (`from
        orbax.checkpoint._src import checkpoint_utils` in a package) is a re-export of that module."""
        if name in m.redundant:
            return False
        t = self.resolve(m.name, name)
        return t is not None and t[0] == "module" and not self.public_module(t[1]) and \
            t[1].rpartition(".")[2] != name

    def exports(self, mod: str) -> dict:
        if mod in self.export_memo:
            return self.export_memo[mod]
        if mod in self.export_active or mod not in self.modules:
            return {}
        self.export_active.add(mod)
        try:
            m = self.modules[mod]
            names = self.all_names(m)
            if names is None:
                names = self.default_public(m)
            out = {}
            explicit = set(m.all_names or [])
            for n in names:
                if n.startswith("_"):
                    continue
                t = self.resolve(mod, n)
                if t is None and n in explicit:
                    b = m.bindings.get(n)
                    if b is not None and b[0] == "from":
                        # named in __all__ but imported from another distribution (torch.pi from math)
                        t = ("def", Def("constant" if UPPER.match(n) else "attribute", mod, n, None, ""))
                if t is not None:
                    out[n] = t
            if m.all_names is not None:
                # `load = load_model` next to an __all__ that names only load_model: an alias of public API
                targets = {id(t[1]) for t in out.values()}
                for n, b in m.bindings.items():
                    if b[0] == "expr" and not n.startswith("_") and n not in out:
                        t = self.resolve(mod, n)
                        if t is not None and id(t[1]) in targets:
                            out[n] = t
        finally:
            self.export_active.discard(mod)
        self.export_memo[mod] = out
        return out

    # -- walking ------------------------------------------------------------------------------------------
    def excluded(self, pub: str) -> bool:
        for p in self.exclude:
            if pub == p or pub.startswith(p + "."):
                return True
        return False

    def public_module(self, mod: str) -> bool:
        return all(self.public_component(p) for p in mod.split(".")) and not self.excluded(mod)

    def public_component(self, part: str) -> bool:
        skip = self.conf.get("skip")
        return not part.startswith("_") and not TESTISH.match(part) and not (skip and re.match(skip, part))

    def walk(self) -> dict:
        paths: dict = {}
        walks: dict[str, int] = {}
        seen: set = set()
        queue = deque((r, r) for r in self.roots)
        walk_fs = self.conf.get("walk_fs", True)
        self.deprecated_paths: dict[str, str] = {}
        while queue:
            pub, mod = queue.popleft()
            if pub in seen or self.excluded(pub) or pub.count(".") >= MAX_DEPTH:
                continue
            seen.add(pub)
            paths.setdefault(("module", mod), set()).add(pub)
            if walks.get(mod, 0) >= MAX_WALKS_PER_MODULE:
                continue
            walks[mod] = walks.get(mod, 0) + 1
            for name, t in sorted(self.exports(mod).items()):
                if not self.public_component(name):
                    continue
                if t[0] == "module" and (mod == t[1] or mod.startswith(t[1] + ".")):
                    continue  # `import torch` inside torch.backends is not a re-export of torch
                p = f"{pub}.{name}"
                if name in self.modules[mod].deprecated:
                    self.deprecated_paths[p] = self.modules[mod].deprecated[name]
                if t[0] == "module":
                    queue.append((p, t[1]))
                else:
                    paths.setdefault(t, set()).add(p)
            if walk_fs:
                for sub in self.children.get(mod, []):
                    last = sub.rpartition(".")[2]
                    if self.public_component(last):
                        queue.append((f"{pub}.{last}", sub))
        return paths


# ---------------------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------------------

_LINE_CACHE: dict[int, tuple[str, list[str]]] = {}


def source_segment(source: str, node: ast.AST) -> str | None:
    """ast.get_source_segment without re-splitting the whole source at every call."""
    cached = _LINE_CACHE.get(id(source))
    if cached is None or cached[0] is not source:
        cached = (source, source.splitlines(keepends=True))
        _LINE_CACHE.clear()
        _LINE_CACHE[id(source)] = cached
    lines = cached[1]
    try:
        l0, l1 = node.lineno - 1, node.end_lineno - 1
        c0, c1 = node.col_offset, node.end_col_offset
    except AttributeError:
        return None
    if l0 == l1:
        return lines[l0].encode()[c0:c1].decode(errors="replace")
    first = lines[l0].encode()[c0:].decode(errors="replace")
    last = lines[l1].encode()[:c1].decode(errors="replace")
    return first + "".join(lines[l0 + 1:l1]) + last


def default_text(node: ast.AST, source: str, limit: int = MAX_DEFAULT) -> str:
    text = None
    try:
        text = source_segment(source, node)
    except Exception:  # noqa: BLE001
        text = None
    if not text:
        text = ast.unparse(node)
    text = " ".join(text.split())
    if len(text) > limit:
        return "..."
    return text


def annotation_text(node: ast.AST | None, source: str) -> str | None:
    """A parameter's annotation as written (a string annotation without its quotes), or None when it
    is absent or longer than MAX_PARAM_TEXT."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    else:
        try:
            text = source_segment(source, node)
        except Exception:  # noqa: BLE001
            text = None
        if not text:
            text = ast.unparse(node)
    text = " ".join(text.split())
    return text if text and len(text) <= MAX_PARAM_TEXT else None


def param(name: str, annotation: ast.AST | None, default: ast.AST | None, source: str) -> dict:
    rec = {"name": name}
    ann = annotation_text(annotation, source)
    if ann is not None:
        rec["annotation"] = ann
    if default is not None:
        rec["default"] = default_text(default, source, MAX_PARAM_TEXT)
    return rec


def param_list(fn: ast.AST, source: str, drop_first: bool) -> list[dict]:
    """The parameters of `fn` in the order of `params`, as {"name", "annotation", "default"}."""
    a = fn.args
    pos = list(a.posonlyargs) + list(a.args)
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    start = 1 if drop_first and pos else 0
    out = [param(arg.arg, arg.annotation, defaults[i], source) for i, arg in enumerate(pos) if i >= start]
    if a.vararg is not None:
        out.append(param("*" + a.vararg.arg, a.vararg.annotation, None, source))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append(param(arg.arg, arg.annotation, d, source))
    if a.kwarg is not None:
        out.append(param("**" + a.kwarg.arg, a.kwarg.annotation, None, source))
    return out


def informative(plist: list[dict] | None) -> bool:
    """Whether a parameter list says more than the signature's names: an annotation or a default."""
    return bool(plist) and any(len(p) > 1 for p in plist)


def params(fn: ast.AST, source: str, drop_first: bool) -> str:
    a = fn.args
    pos = list(a.posonlyargs) + list(a.args)
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    items = []
    start = 1 if drop_first and pos else 0
    for i, arg in enumerate(pos):
        if i < start:
            continue
        d = defaults[i]
        items.append(arg.arg + (f"={default_text(d, source)}" if d is not None else ""))
        if a.posonlyargs and i == len(a.posonlyargs) - 1:
            items.append("/")
    if a.vararg is not None:
        items.append("*" + a.vararg.arg)
    elif a.kwonlyargs:
        items.append("*")
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        items.append(arg.arg + (f"={default_text(d, source)}" if d is not None else ""))
    if a.kwarg is not None:
        items.append("**" + a.kwarg.arg)
    if items and items[0] == "/":
        items = items[1:]
    return ", ".join(items)


def method_kind(fn: ast.AST) -> str:
    names = [n.split(".")[-1] for n in deco_names(fn)]
    full = deco_names(fn)
    if any(n.endswith((".setter", ".deleter")) for n in full):
        return "skip"
    if any(n in ("property", "cached_property", "abstractproperty", "lazy_property") or n.endswith("property")
           for n in names) or any(n.endswith(".getter") for n in full):
        return "property"
    if "staticmethod" in names:
        return "static"
    if "classmethod" in names:
        return "classmethod"
    return "method"


# ---------------------------------------------------------------------------------------------------------
# Building the facts
# ---------------------------------------------------------------------------------------------------------

def mark_deprecated(rec: dict, since: str):
    rec["deprecated"] = True
    if since:
        rec["deprecated_since"] = since


class Harvester:
    def __init__(self, dist: str, pkg: Package, docs):
        self.dist = dist
        self.pkg = pkg
        self.docs = docs
        self.paths = pkg.walk()
        self.stub_mods = pkg.stub_mods
        self.primary: dict = {}
        for t, ps in self.paths.items():
            self.primary[t] = self.choose(t, ps)

    def choose(self, t, ps: set) -> str:
        defining = None
        if t[0] == "def":
            defining = f"{t[1].mod}.{t[1].name}"
        elif t[0] == "module":
            defining = t[1]
        deprecated = self.pkg.deprecated_paths
        return min(ps, key=lambda p: (p in deprecated, p.count("."), p != defining, len(p), p))

    def class_members(self, d: Def, seen=None) -> list[tuple[Def, list]]:
        """Class bodies (the class and, through private bases, what it inherits)."""
        seen = seen or set()
        key = (d.mod, d.name)
        if key in seen:
            return []
        seen.add(key)
        out = [(d, [d.node] + d.stub_extra)]
        for base in self.bases(d):
            if ("def", base) in self.primary:
                continue  # a public base: its members are listed under its own name
            if base.kind in ("class", "enum"):
                out.extend(self.class_members(base, seen))
        return out

    def bases(self, d: Def) -> list[Def]:
        out = []
        for b in getattr(d.node, "bases", []):
            if isinstance(b, ast.Subscript):
                b = b.value
            r = self.pkg.resolve_expr(d.mod, b) if isinstance(b, (ast.Name, ast.Attribute)) else None
            if r is not None and r[0] == "def":
                out.append(r[1])
        return out

    def is_enum(self, d: Def, depth=0) -> bool:
        if depth > 8 or not isinstance(d.node, ast.ClassDef):
            return False
        return any(b.kind == "enum" or self.is_enum(b, depth + 1) for b in self.bases(d))

    def is_dataclass_like(self, d) -> bool:
        # dataclasses, attrs, and wrappers around them such as huggingface_hub's
        # `dataclass_with_extra` and `strict`, and decorators of the package's own that typing's
        # `dataclass_transform` marks as making dataclasses (vLLM's `@config`).
        decos = [n.split(".")[-1] for n in deco_names(d.node)]
        if any(x in ("define", "frozen", "attrs", "s", "strict") or "dataclass" in x for x in decos):
            return True
        for b in d.node.bases:  # msgspec.Struct subclasses (vLLM's SamplingParams): fields as parameters
            if isinstance(b, (ast.Name, ast.Attribute)) and self.dotted(d.mod, b) == "msgspec.Struct":
                return True
        for dec in d.node.decorator_list:
            f = dec.func if isinstance(dec, ast.Call) else dec
            if not isinstance(f, (ast.Name, ast.Attribute)):
                continue
            r = self.pkg.resolve_expr(d.mod, f)
            if r is None or r[0] != "def" or r[1].kind != "function":
                continue
            for fn in [r[1].node] + r[1].overloads:
                if any(n.split(".")[-1] == "dataclass_transform" for n in deco_names(fn)):
                    return True
        return False

    def inherited_fields(self, d, depth) -> list:
        # A dataclass's generated __init__ takes its dataclass bases' fields first.
        fields = []
        for base in reversed(self.bases(d)):
            if depth < 8 and isinstance(base.node, ast.ClassDef) and self.is_dataclass_like(base):
                sig = self.class_signature(base, "x", depth + 1) or ""
                inner = sig[2:-1] if sig.startswith("x(") else ""
                fields.extend(p.strip() for p in split_params(inner) if p.strip() and p.strip() != "*")
        return fields

    def under_transform(self, d: Def, depth=0) -> bool:
        """Whether a base class (not `d` itself) is decorated with typing's `dataclass_transform`: every
        class deriving from it is then a dataclass to type checkers (flax.linen.Module's subclasses)."""
        if depth > 8 or not isinstance(d.node, ast.ClassDef):
            return False
        for b in self.bases(d):
            if not isinstance(b.node, ast.ClassDef):
                continue
            if any(n.split(".")[-1] == "dataclass_transform" for n in deco_names(b.node)):
                return True
            if self.under_transform(b, depth + 1):
                return True
        return False

    def transform_fields(self, d: Def, depth=0) -> list[tuple[dict, bool]]:
        """The generated constructor's fields of a class under a `dataclass_transform` base, bases'
        fields first, each with whether it is keyword-only."""
        if depth > 8 or not self.under_transform(d):
            return []
        fields: dict[str, tuple[dict, bool]] = {}
        for base in reversed(self.bases(d)):
            for rec, kw in self.transform_fields(base, depth + 1):
                fields[rec["name"]] = (rec, kw)
        class_kw = any(k.arg == "kw_only" and getattr(k.value, "value", False) is True for k in d.node.keywords)
        for item in self.class_body(d.node.body):
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            if "ClassVar" in ast.unparse(item.annotation):
                continue
            init, value, kw = field_spec(item.value)
            if not init:
                continue
            kw = kw or class_kw
            fields[item.target.id] = (param(item.target.id, item.annotation, value, d.source), kw)
        return list(fields.values())

    def transform_params(self, d: Def) -> list[dict] | None:
        if not self.under_transform(d):
            return None
        fields = self.transform_fields(d)
        return [r for r, kw in fields if not kw] + [r for r, kw in fields if kw]

    def transform_signature(self, d: Def, name: str) -> str | None:
        if not self.under_transform(d):
            return None
        fields = self.transform_fields(d)
        items = [r["name"] + (f"={r['default']}" if "default" in r else "") for r, kw in fields if not kw]
        kws = [r["name"] + (f"={r['default']}" if "default" in r else "") for r, kw in fields if kw]
        return f"{name}({', '.join(items + (['*'] + kws if kws else []))})"

    def class_signature(self, d: Def, name: str, depth=0) -> str | None:
        if depth > 8 or not isinstance(d.node, ast.ClassDef):
            return None
        if d.kind == "enum":
            return None
        for node in [d.node] + d.stub_extra:
            for fn_name in ("__init__", "__new__"):
                for item in self.class_body(node.body):
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == fn_name:
                        return f"{name}({params(item, d.stub_sources.get(id(node), d.source), drop_first=True)})"
        if (sig := self.transform_signature(d, name)) is not None:
            return sig
        decos = [n.split(".")[-1] for n in deco_names(d.node)]
        base_names = [ast.unparse(b.value if isinstance(b, ast.Subscript) else b).split(".")[-1]
                      for b in d.node.bases]
        if self.is_dataclass_like(d) or "NamedTuple" in base_names:
            items, kw = self.inherited_fields(d, depth), "NamedTuple" not in base_names and any(
                isinstance(k, ast.keyword) and k.arg == "kw_only" and getattr(k.value, "value", False)
                for dec in d.node.decorator_list if isinstance(dec, ast.Call) for k in dec.keywords) or any(
                k.arg == "kw_only" and getattr(k.value, "value", False) is True for k in d.node.keywords)
            for item in d.node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    ann = ast.unparse(item.annotation)
                    if "ClassVar" in ann:
                        continue
                    init, value, _ = field_spec(item.value)
                    if not init:
                        continue
                    if value is not None:
                        items.append(f"{item.target.id}={default_text(value, d.source)}")
                    else:
                        items.append(item.target.id)
            if kw and items:
                items = ["*"] + items
            return f"{name}({', '.join(items)})"
        bases = self.bases(d)
        resolved = {b.name for b in bases}
        unresolved = [n for n in base_names if n not in resolved and n not in TRIVIAL_BASES]
        for k in d.node.keywords:
            if k.arg != "metaclass":
                unresolved.append(k.arg)
        # the first base (in order, as the MRO mostly goes) that defines a constructor gives it; a base
        # with none of its own (`()`) lets the next one speak (lightning's BitsandbytesPrecision takes
        # its second base's __init__)
        empty = None
        for b in bases:
            s = self.class_signature(b, name, depth + 1)
            if s is not None and s != f"{name}()":
                return s
            if s is None and b.kind in ("class",):
                return empty  # cannot tell beyond this base: what the bases before it gave, if any
            empty = empty or s
        if empty is not None:
            return empty
        if unresolved:
            return None
        return f"{name}()"

    def class_params(self, d: Def, depth=0) -> list[dict] | None:
        """The constructor's parameters, found the way class_signature finds the signature."""
        if depth > 8 or not isinstance(d.node, ast.ClassDef) or d.kind == "enum":
            return None
        for node in [d.node] + d.stub_extra:
            for fn_name in ("__init__", "__new__"):
                for item in self.class_body(node.body):
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == fn_name:
                        return param_list(item, d.stub_sources.get(id(node), d.source), drop_first=True)
        if (plist := self.transform_params(d)) is not None:
            return plist
        base_names = [ast.unparse(b.value if isinstance(b, ast.Subscript) else b).split(".")[-1]
                      for b in d.node.bases]
        if self.is_dataclass_like(d) or "NamedTuple" in base_names:
            items = []
            for base in reversed(self.bases(d)):
                if depth < 8 and isinstance(base.node, ast.ClassDef) and self.is_dataclass_like(base):
                    items.extend(self.class_params(base, depth + 1) or [])
            for item in d.node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    if "ClassVar" in ast.unparse(item.annotation):
                        continue
                    init, value, _ = field_spec(item.value)
                    if not init:
                        continue
                    items.append(param(item.target.id, item.annotation, value, d.source))
            return items
        bases = self.bases(d)
        resolved = {b.name for b in bases}
        if [n for n in base_names if n not in resolved and n not in TRIVIAL_BASES] or \
                [k for k in d.node.keywords if k.arg != "metaclass"]:
            unresolved = True
        else:
            unresolved = False
        empty = None
        for b in bases:
            p = self.class_params(b, depth + 1)
            if p:
                return p
            if p is None and b.kind in ("class",):
                return empty
            empty = empty if empty is not None else p
        if empty is not None:
            return empty
        return None if unresolved else []

    # -- types: `returns` and `bases` ------------------------------------------------------------------
    def base_names(self, d: Def, seen=None) -> list[str]:
        """Public names of a class's bases, nearest first. A base without a facts line of its own (a
        private mixin, whose members are listed under the class) gives its own bases in its place."""
        seen = seen if seen is not None else set()
        if id(d) in seen or len(seen) > 16:
            return []
        seen.add(id(d))
        out = []
        for b in getattr(d.node, "bases", []):
            if isinstance(b, ast.Subscript):
                b = b.value  # Generic[T], Module[T]
            if not isinstance(b, (ast.Name, ast.Attribute)):
                continue
            r = self.pkg.resolve_expr(d.mod, b)
            if r is not None:
                if r[0] == "def" and r[1].kind in ("class", "enum") and isinstance(r[1].node, ast.ClassDef):
                    public = self.primary.get(("def", r[1]))
                    out.extend([public] if public else self.base_names(r[1], seen))
                continue
            ext = external_class(self.dotted(d.mod, b), norm(self.dist))
            if ext:
                out.append(ext)
        return list(dict.fromkeys(out))

    def dotted(self, mod: str, node: ast.AST, depth=0) -> str | None:
        """The dotted name an expression stands for through the module's imports (`nn.Module` after
        `from torch import nn` is `torch.nn.Module`), for names the package itself does not define."""
        if depth > 8:
            return None
        if isinstance(node, ast.Attribute):
            base = self.dotted(mod, node.value, depth + 1)
            return f"{base}.{node.attr}" if base else None
        if not isinstance(node, ast.Name):
            return None
        m = self.pkg.modules.get(mod)
        b = m.bindings.get(node.id) if m is not None else None
        if b is None:
            return node.id
        if b[0] == "module":
            return b[1]
        if b[0] == "from":
            src = self.pkg.modules.get(b[1])
            if src is not None and b[2] in src.bindings:
                return self.dotted(b[1], ast.Name(id=b[2]), depth + 1)  # re-exported by the package
            return f"{b[1]}.{b[2]}"
        if b[0] == "expr":
            return self.dotted(mod, b[1], depth + 1)
        return None

    def result_type(self, node: ast.AST | None, mod: str, ctx) -> str | None:
        """A `returns` value: the type expression of an annotation when it names a package's class."""
        if node is None:
            return None
        t = self.type_text(node, mod, ctx, 0)
        return t if t and "." in t else None

    def type_text(self, node: ast.AST, mod: str, ctx, depth: int) -> str | None:
        """Normalized type of an annotation, `None` for None, builtin names as they are, or None when
        it cannot be told (an unknown name, a union of different types, a callable, ...)."""
        if depth > 12:
            return None
        if isinstance(node, ast.Constant):
            if node.value is None:
                return "None"
            if isinstance(node.value, str):
                try:
                    inner = ast.parse(node.value.strip(), mode="eval").body
                except SyntaxError:
                    return None
                return self.type_text(inner, mod, ctx, depth + 1)
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.union([node.left, node.right], mod, ctx, depth)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self.name_type(node, mod, ctx, depth)
        if not isinstance(node, ast.Subscript):
            return None
        head = node.value
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if not isinstance(head, (ast.Name, ast.Attribute)):
            return None
        r = self.pkg.resolve_expr(mod, head)
        if r is not None and r[0] == "def" and r[1].kind in ("class", "enum"):
            return self.name_type(head, mod, ctx, depth)  # a generic class of the package: `Dataset[T]`
        last = ast.unparse(head).rpartition(".")[2]
        if last == "Optional" and len(args) == 1:
            return self.union([args[0], ast.Constant(None)], mod, ctx, depth)
        if last == "Union":
            return self.union(args, mod, ctx, depth)
        if last in TYPE_WRAPPERS:
            return self.type_text(args[0], mod, ctx, depth + 1)
        container = CONTAINERS.get(last)
        if container is None:
            t = self.name_type(head, mod, ctx, depth)  # a generic class of another package
            return t if t and "." in t else None
        if any(isinstance(a, ast.Constant) and a.value is Ellipsis for a in args):
            if container == "tuple" and len(args) == 2 and isinstance(args[1], ast.Constant) and \
                    args[1].value is Ellipsis:
                elem = self.type_text(args[0], mod, ctx, depth + 1)
                return f"tuple[{elem}, ...]" if elem else None
            return None
        if container == "Iterator":
            args = args[:1]  # Generator[Yield, Send, Return]
        elif container == "list" and len(args) != 1 or container == "dict" and len(args) != 2:
            return None
        if not args or isinstance(args[0], ast.Tuple) and not args[0].elts:
            return None  # tuple[()]
        parts = [self.type_text(a, mod, ctx, depth + 1) for a in args]
        if not all(parts):
            return None
        return f"{container}[{', '.join(parts)}]"

    def union(self, members: list, mod: str, ctx, depth: int) -> str | None:
        """`X | None` is X; a union of different types cannot be told."""
        flat = []
        todo = list(members)
        while todo:
            m = todo.pop(0)
            if isinstance(m, ast.BinOp) and isinstance(m.op, ast.BitOr):
                todo[:0] = [m.left, m.right]
            else:
                flat.append(m)
        types = []
        for m in flat:
            if len(flat) > 1 and ast.unparse(m).rpartition(".")[2] == "Any":
                continue  # `Union[jax.Array, Any]` (flax.typing.Array): the checker finds members on X
            t = self.type_text(m, mod, ctx, depth + 1)
            if t is None:
                return None
            if t != "None" and t not in types:
                types.append(t)
        if not types:
            return "None"
        return types[0] if len(types) == 1 else None

    def name_type(self, node: ast.AST, mod: str, ctx, depth: int) -> str | None:
        owner, cls_name, receivers = ctx
        if isinstance(node, ast.Name) and node.id in receivers:
            return cls_name  # `def train(self: T) -> T`
        r = self.pkg.resolve_expr(mod, node)
        if r is not None:
            if r[0] != "def":
                return None
            d = r[1]
            if owner is not None and d is owner:
                return cls_name  # the class's own name: the class the member is listed under
            if d.kind in ("class", "enum"):
                return self.primary.get(("def", d))
            if d.kind == "type" and depth < 8:  # an alias: what it stands for
                value = getattr(d.node, "value", None)
                if isinstance(d.node, (ast.Assign, ast.AnnAssign)) or type(d.node).__name__ == "TypeAlias":
                    return self.type_text(value, d.mod, (None, None, set()), depth + 1) if value else None
            return None
        dotted = self.dotted(mod, node)
        if dotted is None:
            return None
        if dotted.startswith("builtins."):
            dotted = dotted[len("builtins."):]
        if dotted in BUILTIN_TYPES:
            return dotted
        prefix, _, last = dotted.rpartition(".")
        if prefix in ("typing", "typing_extensions") or not prefix:
            if last == "Self":
                return cls_name
            if last == "Any":
                return "Any"
            return None
        return external_class(dotted, norm(self.dist))

    def receivers(self, fn: ast.AST, mod: str) -> set:
        """TypeVars that stand for the receiver: `self: T`, `cls: type[T]`."""
        pos = list(fn.args.posonlyargs) + list(fn.args.args)
        if not pos or pos[0].annotation is None:
            return set()
        ann = pos[0].annotation
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return set()
        if isinstance(ann, ast.Subscript) and ast.unparse(ann.value).rpartition(".")[2] in ("type", "Type"):
            ann = ann.slice
        if not isinstance(ann, ast.Name):
            return set()
        type_params = [t.name for t in getattr(fn, "type_params", [])]  # def f[T](self: T) -> T
        return {ann.id} if ann.id in type_params or self.is_typevar(mod, ann) else set()

    def is_typevar(self, mod: str, node: ast.Name) -> bool:
        r = self.pkg.resolve_expr(mod, node)
        value = getattr(r[1].node, "value", None) if r is not None and r[0] == "def" else None
        return isinstance(value, ast.Call) and ast.unparse(value.func).rpartition(".")[2] == "TypeVar"

    def function_returns(self, fns: list, mod: str, owner: Def | None, cls_name: str | None,
                         method: bool = False) -> str | None:
        """What calling a function gives: its implementation's annotation, or, when that is absent,
        the one all its @overload stubs agree on."""
        fns = [f for f in fns if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not fns:
            return None
        for f in fns:
            if isinstance(f, ast.AsyncFunctionDef) or any("contextmanager" in n for n in deco_names(f)):
                return None  # a coroutine or a context manager, not what the annotation names

        def one(f):
            receiver = method and method_kind(f) != "static"  # a staticmethod's first parameter is no receiver
            ctx = (owner, cls_name, self.receivers(f, mod) if receiver else set())
            return self.result_type(f.returns, mod, ctx)
        impl = [f for f in fns if not is_overload(f)]
        if impl:
            if impl[0].returns is not None:
                return one(impl[0])
        stubs = [f for f in fns if is_overload(f)]
        if not stubs:
            return None
        found = {one(f) for f in stubs}
        return found.pop() if len(found) == 1 else None

    def method_returns(self, owner: Def, node: ast.ClassDef, name: str, cls_name: str) -> str | None:
        """The `returns` of a method or property `name` of `owner` (first the class body the member is
        listed from, then the owner's other bodies: a .py class and its .pyi)."""
        nodes = [node] + [n for n in [owner.node] + owner.stub_extra if n is not node]
        for body in nodes:
            if not isinstance(body, ast.ClassDef):
                continue
            fns = [i for i in self._class_body(body.body)
                   if isinstance(i, (ast.FunctionDef, ast.AsyncFunctionDef)) and i.name == name]
            fns = [f for f in fns if method_kind(f) != "skip"]
            if fns:
                ret = self.function_returns(fns, owner.mod, owner, cls_name, method=True)
                if ret:
                    return ret
        return None

    def build(self) -> list[dict]:
        records: dict[str, dict] = {}
        primaries = set(self.primary.values())
        for t, ps in self.paths.items():
            name = self.primary[t]
            aliases = sorted(p for p in ps if p != name and p not in primaries)
            rec = {"name": name}
            if t[0] == "external":
                rec.update(kind="reexport", target=t[1])
                if aliases:
                    rec["aliases"] = aliases[:MAX_ALIASES]
                rec["_def"] = None
                self.add(records, rec)
                continue
            if t[0] == "module":
                rec["kind"] = "module"
                d = None
            else:
                d = t[1]
                if d.kind == "class" and self.is_enum(d):
                    d.kind = "enum"  # inherits from an Enum through the package's own classes
                rec["kind"] = d.kind
                if d.kind == "function" and isinstance(d.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    rec["signature"] = f"{name}({params(d.node, d.source, drop_first=False)})"
                    stubs = [f for f in [d.node] + d.overloads if is_overload(f)]
                    if stubs:
                        rec["overloads"] = [f"{name}({params(f, d.source, drop_first=False)})" for f in stubs]
                    plist = param_list(d.node, d.source, drop_first=False)
                    if informative(plist):
                        rec["params"] = plist
                    ret = self.function_returns([d.node] + d.overloads, d.mod, None, None)
                    if ret:
                        rec["returns"] = ret
                elif d.kind in ("class", "enum"):
                    sig = self.class_signature(d, name)
                    if sig:
                        rec["signature"] = sig
                        plist = self.class_params(d)
                        if informative(plist):
                            rec["params"] = plist
                    bases = [b for b in self.base_names(d) if b != name]
                    if bases:
                        rec["bases"] = bases
                elif d.kind in ("attribute", "constant") and isinstance(d.node, ast.AnnAssign):
                    ret = self.result_type(d.node.annotation, d.mod, (None, None, set()))
                    if ret:
                        rec["returns"] = ret
            if aliases:
                rec["aliases"] = aliases[:MAX_ALIASES]
            if name in self.pkg.deprecated_paths:
                mark_deprecated(rec, self.pkg.deprecated_paths[name])
            elif d is not None and d.deprecated is not None:
                mark_deprecated(rec, deprecated_since(d.deprecated))
            rec["_def"] = d
            self.add(records, rec)
            if d is not None and d.kind in ("class", "enum"):
                for owner, nodes in self.class_members(d):
                    for node in nodes:
                        self.members(records, name, owner, node)
        out = []
        for name in sorted(records):
            rec = records[name]
            d = rec.pop("_def")
            defmod = d.mod if d is not None else None
            if rec["kind"] != "reexport":
                rec["docs"] = self.docs(name, rec["kind"], defmod)
            if "returns" not in rec and name in CURATED_RETURNS:
                rec["returns"] = CURATED_RETURNS[name]
            ordered = {k: rec[k] for k in ("name", "kind", "target", "signature", "aliases", "docs", "returns",
                                           "bases", "params", "overloads", "deprecated", "deprecated_since")
                       if k in rec}
            out.append(ordered)
        return out

    KIND_RANK = {"class": 0, "enum": 0, "function": 1, "type": 2, "constant": 3, "attribute": 4, "method": 5,
                 "module": 6, "reexport": 7}

    def add(self, records: dict, rec: dict):
        old = records.get(rec["name"])
        if old is None or self.KIND_RANK.get(rec["kind"], 9) < self.KIND_RANK.get(old["kind"], 9):
            records[rec["name"]] = rec

    def members(self, records: dict, cls_name: str, owner: Def, node: ast.ClassDef):
        seen_local: set = set()
        for item in self.class_body(node.body):
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if item.name.startswith("_") and item.name != "__call__":
                    continue  # __call__ says what calling an instance gives (a Flax layer's output)
                mk = method_kind(item)
                if mk == "skip":
                    continue
                full = f"{cls_name}.{item.name}"
                if full in records and item.name in seen_local:
                    continue  # overloads: keep the first
                if full in records and records[full].get("_owner") is not owner and \
                        records[full].get("_owner") is not None:
                    continue  # defined in the class itself (or an earlier base) wins
                seen_local.add(item.name)
                if mk == "property":
                    rec = {"name": full, "kind": "attribute"}
                else:
                    source = owner.stub_sources.get(id(node), owner.source)  # a .pyi body has its own
                    rec = {"name": full, "kind": "method",
                           "signature": f"{full}({params(item, source, drop_first=(mk != 'static'))})"}
                    plist = param_list(item, source, drop_first=(mk != "static"))
                    if informative(plist):
                        rec["params"] = plist
                    stubs = [i for i in self._class_body(node.body) if isinstance(i, (ast.FunctionDef,
                             ast.AsyncFunctionDef)) and i.name == item.name and is_overload(i)]
                    if stubs:
                        rec["overloads"] = [f"{full}({params(f, source, drop_first=(mk != 'static'))})"
                                            for f in stubs]
                notice = deprecation_notice(item)
                if notice is not None:
                    mark_deprecated(rec, deprecated_since(notice))
                ret = self.method_returns(owner, node, item.name, cls_name)
                if ret:
                    rec["returns"] = ret
                rec["_def"] = Def("method", owner.mod, f"{owner.name}.{item.name}", item, owner.source)
                rec["_owner"] = owner
                if full not in records:
                    records[full] = rec
            elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                declared = isinstance(item, ast.AnnAssign) and item.value is None
                for t in targets:
                    if not isinstance(t, ast.Name) or t.id.startswith("_"):
                        continue
                    if UPPER.match(t.id) and not declared:
                        kind = "constant"
                    elif declared and (node in owner.stub_extra or owner.is_stub):
                        # `shape: Size` in a stub declares an attribute (`FLOAT: DataType` a constant)
                        kind = "constant" if UPPER.match(t.id) else "attribute"
                    else:
                        continue
                    full = f"{cls_name}.{t.id}"
                    if full not in records:
                        records[full] = {"name": full, "kind": kind,
                                         "_def": Def(kind, owner.mod, f"{owner.name}.{t.id}", item, owner.source),
                                         "_owner": owner}
                        if isinstance(item, ast.AnnAssign):
                            ret = self.result_type(item.annotation, owner.mod, (owner, cls_name, set()))
                            if ret:
                                records[full]["returns"] = ret

    def class_body(self, body):
        # A method's @overload stubs come before its implementation, whose signature is the real one:
        # leave out the stubs of any method that has an implementation.
        items = list(self._class_body(body))
        implemented = {i.name for i in items
                       if isinstance(i, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_overload(i)}
        for item in items:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_overload(item) \
                    and item.name in implemented:
                continue
            yield item

    def _class_body(self, body):
        for item in body:
            if isinstance(item, ast.If):
                yield from self._class_body(item.body)
                yield from self._class_body(item.orelse)
            elif isinstance(item, ast.Try):
                yield from self._class_body(item.body)
            else:
                yield item


# ---------------------------------------------------------------------------------------------------------
# Classes of other packages
# ---------------------------------------------------------------------------------------------------------

_EXTERNAL: dict[str, tuple[str, str]] | None = None
_EXTERNAL_NAMES: dict[str, str] | None = None


def external_symbol(dotted: str) -> str | None:
    """The name another harvested package lists `dotted` under (any kind, by name or alias), from the
    facts already in catalog/facts: whether a re-export such as flax.linen.relu (jax.nn.relu) has a
    target the catalog knows."""
    global _EXTERNAL_NAMES
    if _EXTERNAL_NAMES is None:
        _EXTERNAL_NAMES = {}
        for path in sorted(DEFAULT_OUT.glob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                header = json.loads(fh.readline() or "{}")
                if header.get("language") != "python":
                    continue
                for line in fh:
                    rec = json.loads(line)
                    if rec.get("kind") == "reexport":
                        continue
                    for n in [rec["name"]] + rec.get("aliases", []):
                        _EXTERNAL_NAMES.setdefault(n, rec["name"])
    return _EXTERNAL_NAMES.get(dotted)


def external_class(dotted: str | None, own_package: str) -> str | None:
    """The public name of a class of another harvested package (`torch.nn.modules.module.Module` ->
    `torch.nn.Module`), read from the facts already in catalog/facts (their names and aliases), so a
    package's annotations and bases can name torch's or jax's classes. Harvest a package after the
    packages it builds on (torch before lightning, jax before flax)."""
    global _EXTERNAL
    if not dotted or "." not in dotted:
        return None
    if _EXTERNAL is None:
        _EXTERNAL = {}
        for path in sorted(DEFAULT_OUT.glob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                header = json.loads(fh.readline() or "{}")
                if header.get("language") != "python":
                    continue
                package = header.get("package", "")
                for line in fh:
                    if '"kind": "class"' not in line and '"kind": "enum"' not in line:
                        continue
                    rec = json.loads(line)
                    if rec.get("kind") not in ("class", "enum"):
                        continue
                    for n in [rec["name"]] + rec.get("aliases", []):
                        _EXTERNAL.setdefault(n, (rec["name"], package))
    found = _EXTERNAL.get(dotted)
    if found is None or found[1] == own_package:
        return None
    return found[0]


# ---------------------------------------------------------------------------------------------------------
# Docs URLs
# ---------------------------------------------------------------------------------------------------------

def load_catalog_docs() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Curated docs URLs of catalog symbols (by name and alias), and (module root, system docs) pairs."""
    by_name: dict[str, str] = {}
    roots: list[tuple[str, str]] = []
    for path in sorted((REPO / "catalog").glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001
            continue
        system = data.get("system", {})
        for mod in system.get("python_modules", []):
            if system.get("docs"):
                roots.append((mod, system["docs"]))
        for sym in data.get("symbols", []):
            if sym.get("docs"):
                for n in [sym.get("name")] + list(sym.get("aliases", [])):
                    if n:
                        by_name[n] = sym["docs"]
    roots.sort(key=lambda x: -len(x[0]))
    return by_name, roots


CATALOG_DOCS, CATALOG_ROOTS = load_catalog_docs()


def parent(name: str) -> str:
    return name.rpartition(".")[0]


def torch_docs(name, kind, defmod):
    base = "https://pytorch.org/docs/stable/"
    generated = {"torch", "torch.nn", "torch.nn.functional", "torch.cuda", "torch.linalg", "torch.fft",
                 "torch.optim", "torch.optim.lr_scheduler", "torch.autograd", "torch.autograd.functional",
                 "torch.nn.utils", "torch.nn.utils.parametrize", "torch.jit", "torch.func", "torch.mps",
                 "torch.xpu", "torch.compiler", "torch.nn.attention", "torch.autograd.forward_ad",
                 "torch.autograd.graph", "torch.cuda.amp", "torch.nn.utils.rnn"}
    pages = {"torch": "torch.html", "torch.nn": "nn.html", "torch.nn.functional": "nn.functional.html",
             "torch.Tensor": "tensors.html", "torch.cuda": "cuda.html", "torch.linalg": "linalg.html",
             "torch.fft": "fft.html", "torch.special": "special.html", "torch.optim": "optim.html",
             "torch.autograd": "autograd.html", "torch.nn.init": "nn.init.html", "torch.distributions":
             "distributions.html", "torch.fx": "fx.html", "torch.onnx": "onnx.html", "torch.export": "export.html",
             "torch.amp": "amp.html", "torch.backends": "backends.html", "torch.utils.data": "data.html",
             "torch.random": "random.html", "torch.testing": "testing.html", "torch.distributed":
             "distributed.html", "torch.hub": "hub.html", "torch.utils.checkpoint": "checkpoint.html",
             "torch.profiler": "profiler.html", "torch.futures": "futures.html", "torch.library": "library.html",
             "torch.jit": "jit.html", "torch.func": "func.html", "torch.mps": "mps.html", "torch.xpu": "xpu.html",
             "torch.sparse": "sparse.html", "torch.masked": "masked.html", "torch.nested": "nested.html",
             "torch.overrides": "torch.overrides.html", "torch.utils.dlpack": "dlpack.html",
             "torch.package": "package.html", "torch.monitor": "monitor.html", "torch.signal": "signal.html",
             "torch.utils.tensorboard": "tensorboard.html", "torch.compiler": "torch.compiler.html",
             "torch.accelerator": "accelerator.html", "torch.utils.cpp_extension": "cpp_extension.html",
             "torch.storage": "storage.html", "torch.quantization": "quantization.html",
             "torch.ao.quantization": "quantization.html", "torch.utils": "utils.html",
             "torch.distributed.checkpoint": "distributed.checkpoint.html",
             "torch.distributed.tensor": "distributed.tensor.html", "torch.distributed.fsdp": "fsdp.html",
             "torch.distributed.elastic": "distributed.elastic.html", "torch.cpu": "cpu.html",
             "torch.utils.benchmark": "benchmark_utils.html", "torch.nn.attention": "nn.attention.html"}
    if kind == "module":
        return base + pages[name] if name in pages else base + "index.html"
    if name.startswith("torch.Tensor."):
        if kind == "method":
            return f"{base}generated/{name}.html"
        return base + "tensors.html"
    owner = parent(name)
    if kind in ("method", "attribute", "constant") and owner and owner not in pages:
        cls_parent = parent(owner)
        if cls_parent in generated:
            return f"{base}generated/{owner}.html#{name}"
        mod = cls_parent
    else:
        mod = owner
        if kind in ("function", "class", "enum") and mod in generated:
            return f"{base}generated/{name}.html"
    start = mod
    while mod and mod not in pages:
        mod = parent(mod)
    if mod == "torch" and start != "torch":
        return base + "index.html"  # a deep module with no page of its own
    return base + pages.get(mod, "index.html")


def torchvision_docs(name, kind, defmod):
    base = "https://docs.pytorch.org/vision/stable/"
    sections = {"torchvision.transforms": "transforms.html", "torchvision.transforms.v2": "transforms.html",
                "torchvision.ops": "ops.html", "torchvision.io": "io.html", "torchvision.datasets": "datasets.html",
                "torchvision.utils": "utils.html", "torchvision.models": "models.html",
                "torchvision.tv_tensors": "tv_tensors.html", "torchvision.models.feature_extraction":
                "feature_extraction.html"}
    generated = {"torchvision.transforms", "torchvision.transforms.v2", "torchvision.transforms.functional",
                 "torchvision.transforms.v2.functional", "torchvision.ops", "torchvision.io",
                 "torchvision.datasets", "torchvision.utils", "torchvision.tv_tensors"}
    mod = parent(name)
    if kind == "module":
        return base + sections.get(name, "index.html")
    if kind in ("function", "class") and mod in generated:
        return f"{base}generated/{name}.html"
    if kind == "function" and mod in ("torchvision.models", "torchvision.models.detection",
                                      "torchvision.models.segmentation", "torchvision.models.video",
                                      "torchvision.models.optical_flow", "torchvision.models.quantization"):
        if mod == "torchvision.models" and name.rpartition(".")[2] in ("get_model", "get_model_weights",
                                                                       "get_weight", "list_models"):
            return f"{base}generated/{name}.html"
        return f"{base}models/generated/{name}.html"
    if kind in ("method", "attribute", "constant") and parent(mod) in generated:
        return f"{base}generated/{mod}.html#{name}"
    while mod and mod not in sections:
        mod = parent(mod)
    return base + sections.get(mod, "index.html")


def jax_docs(name, kind, defmod):
    base = "https://docs.jax.dev/en/latest/"
    autosummary = {"jax", "jax.numpy", "jax.numpy.fft", "jax.numpy.linalg", "jax.lax", "jax.random", "jax.nn",
                   "jax.nn.initializers", "jax.scipy.linalg", "jax.scipy.special", "jax.scipy.stats",
                   "jax.scipy.signal", "jax.scipy.fft", "jax.scipy.ndimage", "jax.scipy.optimize",
                   "jax.scipy.integrate", "jax.scipy.interpolate", "jax.scipy.cluster.vq", "jax.scipy.spatial.transform",
                   "jax.tree_util", "jax.tree", "jax.dtypes", "jax.debug", "jax.profiler", "jax.dlpack", "jax.image",
                   "jax.ops", "jax.export", "jax.ffi", "jax.flatten_util", "jax.distributed", "jax.lax.linalg",
                   "jax.experimental.pallas", "jax.experimental.checkify", "jax.experimental.sparse",
                   "jax.experimental.mesh_utils", "jax.experimental.multihost_utils", "jax.experimental.jet",
                   "jax.experimental.custom_partitioning", "jax.ref", "jax.sharding", "jax.stages"}
    anchor_pages = {"jax.stages", "jax.sharding", "jax.errors", "jax.extend", "jax.typing", "jax.monitoring"}
    mod = parent(name)
    if kind == "module":
        return f"{base}{name}.html" if name in autosummary | anchor_pages else base + "jax.html"
    if name.startswith("jax.Array.") and kind in ("method", "attribute"):
        return f"{base}_autosummary/{name}.html"
    if kind in ("function", "class", "enum") and mod in autosummary and mod not in anchor_pages:
        return f"{base}_autosummary/{name}.html"
    if kind in ("function", "class", "enum", "type") and mod in anchor_pages:
        return f"{base}{mod}.html#{name}"
    owner_mod = parent(mod)
    if kind in ("method", "attribute", "constant") and owner_mod in anchor_pages:
        return f"{base}{owner_mod}.html#{name}"
    if kind in ("method", "attribute", "constant") and owner_mod in autosummary:
        return f"{base}_autosummary/{mod}.html#{name}"
    while mod and mod not in autosummary | anchor_pages:
        mod = parent(mod)
    return f"{base}{mod}.html" if mod and mod != "jax" else base + "jax.html"


def tensorflow_docs(name, kind, defmod):
    base = "https://www.tensorflow.org/api_docs/python/"

    def page(n):
        return base + "tf" + n[len("tensorflow"):].replace(".", "/")
    if ".raw_ops." in name or kind in ("module", "function", "class", "enum", "type"):
        return page(name)
    # methods and class attributes have anchors on their class page, module members on the module page
    return f"{page(parent(name))}#{name.rpartition('.')[2]}"


def keras_docs(name, kind, defmod):
    base = "https://keras.io/api/"
    special = {"keras.Model": "models/model/", "keras.Sequential": "models/sequential/",
               "keras.models.Model": "models/model/", "keras.models.Sequential": "models/sequential/",
               "keras.Input": "layers/core_layers/input/", "keras.layers.Input": "layers/core_layers/input/"}
    for prefix, page in special.items():
        if name == prefix or name.startswith(prefix + "."):
            return base + page
    sections = {"layers": "layers/", "models": "models/", "callbacks": "callbacks/", "optimizers": "optimizers/",
                "metrics": "metrics/", "losses": "losses/", "datasets": "datasets/", "applications": "applications/",
                "mixed_precision": "mixed_precision/", "utils": "utils/", "ops": "ops/", "random": "random/",
                "activations": "layers/activations/", "initializers": "layers/initializers/",
                "regularizers": "layers/regularizers/", "constraints": "layers/constraints/",
                "distribution": "distribution/", "saving": "models/model_saving_apis/"}
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in sections:
        return base + sections[parts[1]]
    return base


def transformers_docs(name, kind, defmod):
    base = "https://huggingface.co/docs/transformers/main/en/"
    pages = [("transformers.models.auto", "model_doc/auto"), ("transformers.trainer_callback", "main_classes/callback"),
             ("transformers.trainer", "main_classes/trainer"), ("transformers.training_args", "main_classes/trainer"),
             ("transformers.pipelines", "main_classes/pipelines"), ("transformers.modeling_utils", "main_classes/model"),
             ("transformers.configuration_utils", "main_classes/configuration"),
             ("transformers.tokenization_utils", "main_classes/tokenizer"),
             ("transformers.generation", "main_classes/text_generation"),
             ("transformers.optimization", "main_classes/optimizer_schedules"),
             ("transformers.utils.quantization_config", "main_classes/quantization"),
             ("transformers.data.data_collator", "main_classes/data_collator"),
             ("transformers.feature_extraction_utils", "main_classes/feature_extractor"),
             ("transformers.image_processing_utils", "main_classes/image_processor"),
             ("transformers.processing_utils", "main_classes/processors"),
             ("transformers.utils.logging", "main_classes/logging")]
    if kind == "module" or defmod is None:
        return base + "index"
    top_level = name.count(".") == 1 or (kind in ("method", "attribute", "constant") and name.count(".") == 2)
    for prefix, page in pages:
        if defmod == prefix or defmod.startswith(prefix):
            return f"{base}{page}#{name}" if top_level else base + page
    return base + "index"


def triton_docs(name, kind, defmod):
    base = "https://triton-lang.org/main/python-api/"
    top = {"triton.jit", "triton.autotune", "triton.heuristics", "triton.Config"}
    testing = {"triton.testing.do_bench", "triton.testing.do_bench_cudagraph", "triton.testing.perf_report",
               "triton.testing.Benchmark", "triton.testing.assert_close"}
    if name in top or name in testing:
        return f"{base}generated/{name}.html"
    if kind in ("function", "class") and parent(name) == "triton.language":
        return f"{base}generated/{name}.html"
    if name.startswith("triton.language"):
        return base + "triton.language.html"
    if name.startswith("triton.testing"):
        return base + "triton.testing.html"
    return base + "triton.html"


def mlx_docs(name, kind, defmod):
    base = "https://ml-explore.github.io/mlx/build/html/python/"
    mod = parent(name)
    if kind in ("function", "class") and mod in ("mlx.core", "mlx.core.fft", "mlx.core.linalg", "mlx.core.random",
                                                  "mlx.core.metal", "mlx.core.fast", "mlx.core.distributed"):
        return f"{base}_autosummary/{name}.html"
    if kind in ("method", "attribute") and mod == "mlx.core.array":
        return f"{base}_autosummary/{name}.html"
    if kind == "class" and mod == "mlx.nn":
        return f"{base}nn/_autosummary/{name}.html"
    if kind == "function" and mod == "mlx.nn":
        return f"{base}nn/_autosummary_functions/{name}.html"
    if kind == "class" and mod == "mlx.optimizers":
        return f"{base}optimizers/_autosummary/{name}.html"
    return "https://ml-explore.github.io/mlx/build/html/index.html"


def onnx_docs(name, kind, defmod):
    base = "https://onnx.ai/onnx/api/"
    subs = {"checker", "helper", "numpy_helper", "shape_inference", "version_converter", "compose", "parser",
            "printer", "hub", "reference", "defs", "external_data_helper", "inliner", "utils", "tools", "backend",
            "model_container", "mapping"}
    parts = name.split(".")
    if len(parts) >= 2 and parts[1] in subs:
        return f"{base}{parts[1]}.html"
    if len(parts) >= 2 and parts[1].endswith("Proto"):
        return base + "classes.html"
    if len(parts) == 2 and re.match(r"^(load|save|convert_model_to_external_data|write_external_data_tensors|"
                                    r"load_external_data_for_model)", parts[1]):
        return base + "serialization.html"
    return base + "index.html"


def onnxruntime_docs(name, kind, defmod):
    base = "https://onnxruntime.ai/docs/api/python/api_summary.html"
    if name.count(".") == 1 and kind in ("class", "function"):
        return f"{base}#{name}"
    if name.count(".") == 2 and kind in ("method", "attribute") :
        return f"{base}#{name}"
    return base


def hf_docs(root_docs, pages):
    def docs(name, kind, defmod):
        if defmod:
            for prefix, page in pages:
                if defmod == prefix or defmod.startswith(prefix + ".") or defmod.startswith(prefix + "_"):
                    top = name.count(".") == 1 or (kind in ("method", "attribute", "constant") and name.count(".") == 2)
                    return f"{root_docs}package_reference/{page}#{name}" if top else f"{root_docs}package_reference/{page}"
        return root_docs + "index"
    return docs


datasets_docs = hf_docs("https://huggingface.co/docs/datasets/", [
    ("datasets.load", "loading_methods"), ("datasets.inspect", "loading_methods"),
    ("datasets.arrow_dataset", "main_classes"), ("datasets.dataset_dict", "main_classes"),
    ("datasets.iterable_dataset", "main_classes"), ("datasets.features", "main_classes"),
    ("datasets.info", "main_classes"), ("datasets.combine", "main_classes"), ("datasets.builder", "builder_classes"),
    ("datasets.splits", "builder_classes"), ("datasets.download", "builder_classes"),
    ("datasets.utils.logging", "utilities")])

hub_docs = hf_docs("https://huggingface.co/docs/huggingface_hub/", [
    ("huggingface_hub.file_download", "file_download"), ("huggingface_hub._snapshot_download", "file_download"),
    ("huggingface_hub.hf_api", "hf_api"), ("huggingface_hub._login", "authentication"),
    ("huggingface_hub.repocard", "cards"), ("huggingface_hub.hub_mixin", "mixins"),
    ("huggingface_hub.inference._client", "inference_client"),
    ("huggingface_hub.inference._generated._async_client", "inference_client"),
    ("huggingface_hub.hf_file_system", "hf_file_system"), ("huggingface_hub._space_api", "space_runtime"),
    ("huggingface_hub._inference_endpoints", "inference_endpoints"), ("huggingface_hub.utils.logging", "utilities")])


def vllm_docs(name, kind, defmod):
    mod = name if kind == "module" else defmod
    if mod and not any(p.startswith("_") for p in mod.split(".")):
        return "https://docs.vllm.ai/en/latest/api/" + mod.replace(".", "/") + "/"
    return "https://docs.vllm.ai/en/latest/api/"


def fastai_docs(name, kind, defmod):
    mod = name if kind == "module" else defmod
    if mod and mod.startswith("fastai.") and not any(p.startswith("_") for p in mod.split(".")):
        return f"https://docs.fast.ai/{mod[len('fastai.'):]}.html"
    return "https://docs.fast.ai/"


def cupy_docs(name, kind, defmod):
    base = "https://docs.cupy.dev/en/stable/reference/"
    mod = parent(name)
    documented = {"cupy", "cupy.linalg", "cupy.fft", "cupy.random", "cupy.cuda", "cupy.testing", "cupy.lib.stride_tricks",
                  "cupyx", "cupyx.scipy.ndimage", "cupyx.scipy.signal", "cupyx.scipy.special", "cupyx.scipy.sparse",
                  "cupyx.scipy.linalg", "cupyx.scipy.fft", "cupyx.scipy.stats", "cupyx.scipy.sparse.linalg",
                  "cupyx.scipy.interpolate", "cupyx.profiler", "cupyx.jit"}
    if kind in ("function", "class") and mod in documented:
        return f"{base}generated/{name}.html"
    if kind in ("method", "attribute") and parent(mod) in documented:
        return f"{base}generated/{mod}.html#{name}"
    return base + "index.html"


def aiplatform_docs(name, kind, defmod):
    if name.startswith("vertexai"):
        base = "https://cloud.google.com/python/docs/reference/vertexai/latest/"
        if kind in ("class", "enum") and name.count(".") >= 2:
            return base + name
        if kind in ("method", "attribute") and name.count(".") >= 3:
            return base + parent(name)
        return base + ("vertexai" if kind != "module" else name)
    base = "https://cloud.google.com/python/docs/reference/aiplatform/latest/"
    if kind in ("class", "enum") and parent(name) == "google.cloud.aiplatform":
        return base + name
    if kind in ("method", "attribute") and parent(parent(name)) == "google.cloud.aiplatform":
        return base + parent(name)
    if kind == "function" and parent(name) == "google.cloud.aiplatform":
        return f"{base}google.cloud.aiplatform#{name.replace('.', '_')}"
    return base + "google.cloud.aiplatform"


def azure_docs(name, kind, defmod):
    base = "https://learn.microsoft.com/en-us/python/api/azure-ai-ml/"
    if kind in ("class", "enum", "module"):
        return f"{base}{name.lower()}?view=azure-python"
    if kind in ("method", "attribute", "constant") and name.count(".") >= 4:
        owner = parent(name)
        return f"{base}{owner.lower()}?view=azure-python#{name.lower().replace('.', '-').replace('_', '-')}"
    return f"{base}{parent(name).lower()}?view=azure-python"


def flax_docs(name, kind, defmod):
    base = "https://flax.readthedocs.io/en/latest/api_reference/"
    mod = parent(name)
    if name == "flax.linen.Module" or name.startswith("flax.linen.Module."):
        return base + "flax.linen/module.html"
    if kind == "class" and mod == "flax.linen":
        return f"{base}flax.linen/_autosummary/{name}.html"
    if name.startswith("flax.linen"):
        return base + "flax.linen/index.html"
    if name.startswith("flax.nnx"):
        # the layers' pages follow their defining module: flax.nnx.nn.linear -> flax.nnx/nn/linear.html
        if defmod and defmod.startswith("flax.nnx.nn.") and kind in ("class", "function"):
            return f"{base}flax.nnx/nn/{defmod.rsplit('.', 1)[1]}.html#{name}"
        return base + "flax.nnx/index.html"
    pages = {"flax.struct", "flax.serialization", "flax.training", "flax.traverse_util", "flax.jax_utils",
             "flax.core.frozen_dict", "flax.cursor", "flax.errors", "flax.config"}
    for page in sorted(pages, key=len, reverse=True):
        if name == page or name.startswith(page + "."):
            return f"{base}{page}.html" + (f"#{name}" if name != page else "")
    return base + "index.html"


def optax_docs(name, kind, defmod):
    base = "https://optax.readthedocs.io/en/latest/api/"
    parts = name.split(".")
    # autosummary pages for the functions and classes of optax and its public subpackages
    # (optax.adam, optax.losses.softmax_cross_entropy)
    if kind in ("function", "class") and not any(p.startswith("_") for p in parts):
        return f"{base}generated/{name}.html"
    return base + "optimizers.html" if name.count(".") <= 1 else base + "utilities.html"


def orbax_docs(name, kind, defmod):
    base = "https://orbax.readthedocs.io/en/latest/"
    pages = {"checkpoint_manager": "checkpoint.checkpoint_manager", "checkpointers": "checkpoint.checkpointers",
             "handlers": "checkpoint.checkpoint_handlers", "checkpoint_handlers": "checkpoint.checkpoint_handlers",
             "args": "checkpoint.args", "type_handlers": "checkpoint.type_handlers",
             "checkpoint_utils": "checkpoint.checkpoint_utils", "transform_utils": "checkpoint.transform_utils",
             "msgpack_utils": "checkpoint.msgpack_utils", "tree": "checkpoint.tree",
             "metadata": "checkpoint.metadata", "logging": "checkpoint.logging", "options": "checkpoint.options"}
    target = parent(name) if kind in ("method", "attribute") else name
    parts = target.split(".")
    sub = parts[2] if len(parts) > 3 else None
    if sub is None and defmod:
        mod = defmod.split(".")
        if "handlers" in mod or any(p.endswith("_checkpoint_handler") for p in mod):
            sub = "handlers"
        elif "checkpoint_managers" in mod or "checkpoint_manager" in mod:
            sub = "checkpoint_manager"
        elif "checkpointers" in mod:
            sub = "checkpointers"
    if sub in pages:
        return f"{base}api_reference/{pages[sub]}.html" + (f"#{name}" if kind != "module" else "")
    return base + "index.html"


def chex_docs(name, kind, defmod):
    base = "https://chex.readthedocs.io/en/latest/api.html"
    if name.count(".") == 1 and kind != "module":
        return f"{base}#{name}"
    return base


def equinox_docs(name, kind, defmod):
    base = "https://docs.kidger.site/equinox/"
    nn_pages = {"linear", "conv", "rnn", "attention", "embedding", "normalisation", "dropout", "pool", "mlp",
                "sequential", "stateful", "inference"}
    if name == "equinox.Module" or name.startswith("equinox.Module."):
        return base + "api/module/module/"
    if name.startswith("equinox.nn.") and defmod and defmod.startswith("equinox.nn._"):
        page = defmod.rsplit("._", 1)[1]
        if page in nn_pages and kind in ("class", "function"):
            return f"{base}api/nn/{page}/#{name}"
    if kind == "function" and parent(name) == "equinox" and name.rpartition(".")[2].startswith("filter_"):
        return f"{base}api/transformations/#{name}"
    return base


def fallback_docs(root: str):
    def docs(name, kind, defmod):
        return root
    return docs


DOCS = {
    "torch": torch_docs, "torchvision": torchvision_docs, "jax": jax_docs, "tensorflow": tensorflow_docs,
    "keras": keras_docs, "transformers": transformers_docs, "triton": triton_docs, "mlx": mlx_docs,
    "onnx": onnx_docs, "onnxruntime": onnxruntime_docs, "datasets": datasets_docs, "huggingface_hub": hub_docs,
    "vllm": vllm_docs, "fastai": fastai_docs, "cupy": cupy_docs, "cupy_cuda12x": cupy_docs, "google_cloud_aiplatform": aiplatform_docs,
    "azure_ai_ml": azure_docs,
    "lightning": lambda n, k, m: ("https://lightning.ai/docs/fabric/stable/" if n.startswith("lightning.fabric")
                                  else "https://lightning.ai/docs/pytorch/stable/api_references.html"),
    "wandb": fallback_docs("https://docs.wandb.ai/models/ref/python/"),
    "openai": fallback_docs("https://github.com/openai/openai-python/blob/main/api.md"),
    "deepspeed": fallback_docs("https://deepspeed.readthedocs.io/en/latest/"),
    "coremltools": fallback_docs("https://apple.github.io/coremltools/index.html"),
    "sagemaker": fallback_docs("https://sagemaker.readthedocs.io/en/stable/"),
    "sagemaker_core": fallback_docs("https://sagemaker.readthedocs.io/en/stable/"),
    "sagemaker_train": fallback_docs("https://sagemaker.readthedocs.io/en/stable/"),
    "sagemaker_serve": fallback_docs("https://sagemaker.readthedocs.io/en/stable/"),
    "sagemaker_mlops": fallback_docs("https://sagemaker.readthedocs.io/en/stable/"),
    "flax": flax_docs, "optax": optax_docs, "orbax_checkpoint": orbax_docs, "chex": chex_docs,
    "equinox": equinox_docs,
}


def docs_for(dist: str):
    scheme = DOCS.get(norm(dist))

    def docs(name, kind, defmod):
        if name in CATALOG_DOCS:
            return CATALOG_DOCS[name]
        if scheme is not None:
            return scheme(name, kind, defmod)
        for mod, url in CATALOG_ROOTS:
            if name == mod or name.startswith(mod + "."):
                return url
        return f"https://pypi.org/project/{dist}/"
    return docs


# ---------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------

def harvest(spec: str, wheel_dir: pathlib.Path, out_dir: pathlib.Path) -> tuple[str, dict]:
    dist, _, want = spec.partition("==")  # `torch==2.15.0`: that version's archive, downloaded if missing
    want = want or None
    conf = PACKAGES.get(dist.lower(), PACKAGES.get(norm(dist).replace("_", "-"), {}))
    info = {"package": dist}
    archive = find_archive(dist, wheel_dir, conf.get("sdist", False), want)
    if archive is None:
        err = download(spec, wheel_dir, conf)
        archive = find_archive(dist, wheel_dir, conf.get("sdist", False), want)
        if archive is None:
            info["error"] = f"download failed: {err}"
            return "error", info
    version = archive_version(archive.name)
    info.update(version=version, source=archive.name, size=archive.stat().st_size)
    files, top = read_archive(archive)
    pkg = Package(files, conf, top)
    info["parse_errors"] = pkg.parse_errors
    info["roots"] = pkg.roots
    if not pkg.roots:
        info["error"] = "no importable Python package in the archive"
        return "error", info
    records = Harvester(dist, pkg, docs_for(dist)).build()
    header = {"package": norm(dist), "version": version, "source": archive.name, "tool": TOOL,
              "language": "python"}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{norm(dist)}-{version}.jsonl"
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(header, ensure_ascii=False) + "\n")
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    info["count"] = len(records)
    info["kinds"] = {}
    for rec in records:
        info["kinds"][rec["kind"]] = info["kinds"].get(rec["kind"], 0) + 1
    info["path"] = str(path)
    return "ok", info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packages", nargs="+")
    ap.add_argument("--wheel-dir", default=str(DEFAULT_WHEEL_DIR))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--json-summary", help="also write a JSON summary of the run to this file")
    args = ap.parse_args(argv)
    sys.setrecursionlimit(10000)
    summary = []
    status = 0
    for dist in args.packages:
        try:
            state, info = harvest(dist, pathlib.Path(args.wheel_dir), pathlib.Path(args.out))
        except Exception as err:  # noqa: BLE001 - report and go on with the other packages
            state, info = "error", {"package": dist, "error": f"{err.__class__.__name__}: {err}"}
        summary.append(info)
        if state == "ok":
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(info["kinds"].items()))
            print(f"{info['package']} {info['version']}: {info['count']} symbols ({kinds}) from {info['source']}"
                  + (f"; {len(info['parse_errors'])} files did not parse" if info["parse_errors"] else ""))
        else:
            status = 1
            print(f"{dist}: ERROR {info.get('error')}")
        sys.stdout.flush()
    if args.json_summary:
        pathlib.Path(args.json_summary).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
