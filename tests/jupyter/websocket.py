"""jupyter-lsp for real, over its own websocket: `jupyter server` started from an environment that
is not activated lists tensorlens in /lsp/status (from the wheel's jupyter_lsp_spec_v1 entry point),
and the server it starts through /lsp/ws/tensorlens answers as JupyterLab's client would ask: a
notebook sent as one virtual document (its cells joined, as jupyterlab-lsp sends them), a hover on
`matmul` in the second cell, the document's links and its diagnostics.

Usage: VENV/bin/python websocket.py VENV SCRATCH   (tests/jupyter/run passes them)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import websocket_connect

venv = Path(sys.argv[1])
scratch = Path(sys.argv[2])
failures = 0


def check(condition: object, what: str, detail: object = "") -> None:
    global failures
    if condition:
        print(f"  ok: {what}")
    else:
        failures += 1
        print(f"  FAILED: {what}\n    got: {str(detail)[:1500]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The notebook as jupyterlab-lsp's virtual document holds it: the cells' code, two blank lines apart.
CELLS = ["import torch", "a = torch.randn(8, 16)\nb = torch.randn(16, 4)\ntorch.matmul(a, b)", "with torch.cuda.amp.autocast():\n    pass"]
TEXT = "\n\n\n".join(CELLS) + "\n"


async def main() -> None:
    root = scratch / "root"
    root.mkdir(parents=True, exist_ok=True)
    (scratch / "home").mkdir(exist_ok=True)
    port, token = free_port(), "tensorlens-test"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(scratch / "home"),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
    }
    log = open(scratch / "jupyter-server.log", "wb")
    server = subprocess.Popen(
        [str(venv / "bin/jupyter-server"), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    http = AsyncHTTPClient()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await http.fetch(f"{base}/api/status", headers=headers)
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"jupyter server did not start:\n{(scratch / 'jupyter-server.log').read_text()[-3000:]}")
                await asyncio.sleep(0.3)

        status = json.loads((await http.fetch(f"{base}/lsp/status", headers=headers)).body)
        sessions = status.get("sessions", {})
        check("tensorlens" in sessions, "/lsp/status lists tensorlens", list(sessions))
        spec = sessions.get("tensorlens", {}).get("spec", {})
        check(spec.get("languages") == ["python"] and spec.get("requires_documents_on_disk") is False,
              "for Python, with no documents on disk", spec)
        check(sessions.get("tensorlens", {}).get("status") == "not_started", "not started before a client asks", sessions.get("tensorlens"))

        ws = await websocket_connect(f"ws://127.0.0.1:{port}/lsp/ws/tensorlens?token={token}")
        pending: list[dict] = []

        async def send(message: dict) -> None:
            await ws.write_message(json.dumps(message))

        async def receive(match, what: str, timeout: float = 30) -> dict:
            end = time.monotonic() + timeout
            while True:
                for message in pending:
                    if match(message):
                        pending.remove(message)
                        return message
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout} s; received: {pending[-5:]}")
                raw = await asyncio.wait_for(ws.read_message(), left)
                if raw is None:
                    raise ConnectionError(f"the websocket closed while waiting for {what}")
                pending.append(json.loads(raw))

        async def request(id_: int, method: str, params: dict) -> dict:
            await send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
            return await receive(lambda m: m.get("id") == id_ and "method" not in m, f"answer to {method}")

        root_uri = root.as_uri()
        uri = f"{root_uri}/.virtual_documents/notebook.ipynb"
        init = await request(1, "initialize", {"processId": None, "rootUri": root_uri, "capabilities": {
            "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}, "publishDiagnostics": {}}},
            "workspaceFolders": [{"uri": root_uri, "name": "root"}]})
        caps = init.get("result", {}).get("capabilities", {})
        check(caps.get("hoverProvider") and init["result"].get("serverInfo", {}).get("name") == "tensorlens",
              "initialize is answered by tensorlens", init)
        await send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        await send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": TEXT}}})

        lines = TEXT.split("\n")
        line = next(i for i, l in enumerate(lines) if l.startswith("torch.matmul"))
        hover = await request(2, "textDocument/hover", {"textDocument": {"uri": uri},
                                                         "position": {"line": line, "character": len("torch.ma")}})
        contents = (hover.get("result") or {}).get("contents", {})
        value = contents.get("value", "") if isinstance(contents, dict) else str(contents)
        check("torch.matmul" in value and "PyTorch" in value,
              "a hover on matmul in the second cell names torch.matmul (the first cell's import is seen)", hover)
        print("    " + value.split("\n")[0][:160])

        links = await request(3, "textDocument/documentLink", {"textDocument": {"uri": uri}})
        targets = [l.get("target", "") for l in links.get("result") or []]
        check(any("pytorch.org" in t for t in targets), "document links point to the PyTorch docs", targets)

        diagnostics = await receive(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                                    and m["params"]["uri"] == uri and m["params"]["diagnostics"], "diagnostics")
        messages = [d["message"] for d in diagnostics["params"]["diagnostics"]]
        check(any("torch.cuda.amp.autocast" in m and "deprecated" in m for m in messages),
              "the third cell's deprecated autocast gets a diagnostic", messages)

        status = json.loads((await http.fetch(f"{base}/lsp/status", headers=headers)).body)
        check(status["sessions"]["tensorlens"].get("status") == "started", "/lsp/status shows it started", status["sessions"]["tensorlens"])
        # The process jupyter-lsp started is the wheel's binary, by its absolute path.
        children = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and (proc / "stat").read_text().split(") ")[1].split()[1] == str(server.pid):
                    children.append((proc / "cmdline").read_bytes().split(b"\0")[:2])
            except (OSError, IndexError):
                pass
        expected = [str(venv / "bin" / "tensorlens").encode(), b"serve"]
        check(expected in children, f"jupyter-lsp runs {expected[0].decode()} serve", children)
        await request(4, "shutdown", {})
        await send({"jsonrpc": "2.0", "method": "exit"})
        ws.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


asyncio.run(main())
print(f"{'FAILED' if failures else 'passed'}: jupyter-lsp over its websocket ({failures} failed)")
sys.exit(1 if failures else 0)
