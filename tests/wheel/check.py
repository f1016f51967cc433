"""What `pip install tensorlens[cuda]` must give, checked on an installed environment (tests/wheel/run).

Run with the environment not activated (no VIRTUAL_ENV, no CUDA_HOME, PATH without it), as an editor
or JupyterLab starts the binary: every check runs the installed files themselves.

Usage: python3 check.py VENV REPO
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
repo = Path(sys.argv[2]).resolve()
binary = venv / "bin" / "tensorlens"
python = venv / "bin" / "python"
failures = 0


def check(condition: bool, what: str, detail: object = "") -> None:
    global failures
    if condition:
        print(f"  ok: {what}")
    else:
        failures += 1
        print(f"  FAILED: {what}\n    got: {detail}")


def run(*args: str | Path, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], input=stdin, capture_output=True, timeout=timeout)


version = tomllib.loads((repo / "Cargo.toml").read_text())["workspace"]["package"]["version"]
check(binary.is_file() and os.access(binary, os.X_OK), f"pip put the binary at {binary}")

out = run(binary, "--version")
check(out.returncode == 0 and out.stdout.decode().strip() == f"tensorlens {version}", "tensorlens --version", out)
out = run(python, "-m", "tensorlens", "--version")
check(out.stdout.decode().strip() == f"tensorlens {version}", "python -m tensorlens --version runs the same binary", out)

# The catalog is inside the binary: explain names the framework calls of the fixture.
out = run(binary, "explain", repo / "tests/fixtures/train.py")
said = out.stdout.decode()
check(out.returncode == 0 and "torch.nn.functional.gelu" in said and "jax.jit" in said, "tensorlens explain", said[:800])


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def read_message(stream) -> dict:
    length = 0
    while (line := stream.readline().strip()) != b"":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stream.read(length))


def request(server: subprocess.Popen, message: dict) -> dict:
    server.stdin.write(frame(message))
    server.stdin.flush()
    if "id" not in message:
        return {}
    while (answer := read_message(server.stdout)).get("id") != message["id"]:
        pass
    return answer


# `tensorlens serve` answers initialize over stdio, then shuts down and exits when told.
server = subprocess.Popen([str(binary), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
try:
    init = request(server, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    request(server, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
    shutdown = request(server, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    request(server, {"jsonrpc": "2.0", "method": "exit"})
    status = server.wait(timeout=10)
finally:
    server.kill()
capabilities = init.get("result", {}).get("capabilities", {})
check(bool(capabilities.get("hoverProvider")), "tensorlens serve answers initialize", init)
check(init.get("result", {}).get("serverInfo", {}).get("version") == version, "and names its version", init)
check("result" in shutdown and status == 0, "and shuts down and exits when told", (shutdown, status))

# tensorlens[cuda]: NVRTC, ptxas and nvdisasm found in the environment, beside the binary.
out = run(binary, "kernel", "toolchain", "--json")
toolchain = json.loads(out.stdout or b"{}")
nvidia = next(venv.glob("lib/python3*/site-packages/nvidia/cu13"), None)
check(nvidia is not None, "the [cuda] extra installed NVIDIA's wheels into site-packages/nvidia/cu13", list(venv.glob("lib/*/site-packages/nvidia*")))
nvrtc = toolchain.get("nvrtc", {}).get("Ok", {})
check(nvidia and Path(nvrtc.get("path", "")) == nvidia / "lib/libnvrtc.so.13", "kernel toolchain finds NVRTC there", toolchain)
for tool in ["ptxas", "nvdisasm"]:
    found = toolchain.get(tool, {}).get("Ok", "")
    check(nvidia and Path(found) == (nvidia / "bin" / tool).resolve(), f"and {tool}", toolchain.get(tool))
check(nvidia and str((nvidia / "include").resolve()) in toolchain.get("include_dirs", []), "and the CUDA headers", toolchain)

out = run(binary, "kernel", "analyze", repo / "tests/fixtures/kernels/matmul.cu", "--json", timeout=120)
kernels = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
registers = ", ".join(f"{k.get('name')}: {k.get('registers')} registers" for k in kernels)
check(
    out.returncode == 0 and kernels and all(k.get("registers", 0) > 0 for k in kernels),
    f"a kernel compiles with that NVRTC and ptxas ({registers})",
    out.stderr.decode()[-800:],
)

# jupyter-lsp's spec names this binary by its absolute path.
out = run(python, "-c", "import json, tensorlens.jupyter as j; print(json.dumps(j.spec()))")
spec = json.loads(out.stdout or b"{}").get("tensorlens", {})
check(spec.get("argv") == [str(binary), "serve"] and spec.get("requires_documents_on_disk") is False, "the jupyter-lsp spec", spec or out)
entry_points = run(python, "-c", "from importlib.metadata import entry_points; print([e.value for e in entry_points(group='jupyter_lsp_spec_v1')])")
check("tensorlens.jupyter:spec" in entry_points.stdout.decode(), "is registered as a jupyter_lsp_spec_v1 entry point", entry_points)

# Without the binary, `python -m tensorlens` says what is wrong and how to fix it.
hidden = binary.with_name("tensorlens.hidden")
binary.rename(hidden)
try:
    out = run(python, "-m", "tensorlens", "--version")
    said = out.stderr.decode()
    check(out.returncode == 1 and "was not found" in said and str(binary) in said and "reinstall" in said,
          "python -m tensorlens without the binary: a clear error", said or out)
    out = run(python, "-c", "import json, tensorlens.jupyter as j; print(json.dumps(j.spec()))")
    spec = json.loads(out.stdout or b"{}").get("tensorlens", {})
    check(spec.get("argv") == [] and "was not found" in spec.get("troubleshoot", ""), "and the spec is not installed, with why", spec)
finally:
    hidden.rename(binary)

print(f"{'FAILED' if failures else 'passed'}: the installed wheel ({failures} failed)")
sys.exit(1 if failures else 0)
