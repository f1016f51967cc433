"""A minimal LSP client over stdio, for the oracle measurement: requests with ids, answers to the
server's own requests (configuration, registrations, progress), notifications ignored."""
import json
import queue
import subprocess
import threading


class Lsp:
    def __init__(self, command: list[str], root: str, settings: dict | None = None, cwd: str | None = None,
                 folders: list[str] | None = None):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=cwd)
        self.settings = settings or {}
        self.next_id = 0
        self.replies: dict[int, queue.Queue] = {}
        # `$/progress` kinds by token ("begin", "report", "end"), and a condition to wait on them.
        self.progress: dict[str, str] = {}
        self.progress_changed = threading.Condition()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        uri = "file://" + root
        self.request("initialize", {
            "processId": None, "rootUri": uri,
            "workspaceFolders": [{"uri": "file://" + f, "name": f.rsplit("/", 1)[-1]} for f in (folders or [root])],
            "capabilities": {
                "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]},
                                 "definition": {"linkSupport": False}, "typeDefinition": {"linkSupport": False}},
                "workspace": {"configuration": True, "workspaceFolders": True},
                "window": {"workDoneProgress": True},
            },
        })
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
                self._answer(message)
            elif "id" in message:
                q = self.replies.get(message["id"])
                if q is not None:
                    q.put(message)
            elif message.get("method") == "$/progress":
                with self.progress_changed:
                    self.progress[str(message["params"]["token"])] = message["params"]["value"]["kind"]
                    self.progress_changed.notify_all()

    def _answer(self, message: dict) -> None:
        result = None
        if message["method"] == "workspace/configuration":
            result = [self._section(item.get("section", "")) for item in message["params"]["items"]]
        self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})

    def _section(self, section: str):
        value = self.settings
        for part in filter(None, section.split(".")):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        return value

    def request(self, method: str, params: dict, timeout: float = 120):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        q: queue.Queue = queue.Queue()
        self.replies[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            reply = q.get(timeout=timeout)
        finally:
            del self.replies[rid]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def wait_progress(self, prefix: str, seen: int, timeout: float = 60) -> bool:
        """Waits until a progress whose token starts with `prefix` has begun after the first `seen`
        such tokens, and every one of them has ended. False on timeout."""
        def done() -> bool:
            tokens = [t for t in self.progress if t.startswith(prefix)]
            return len(tokens) > seen and all(self.progress[t] == "end" for t in tokens)
        with self.progress_changed:
            return self.progress_changed.wait_for(done, timeout=timeout)

    def progress_count(self, prefix: str) -> int:
        with self.progress_changed:
            return sum(1 for t in self.progress if t.startswith(prefix))

    def notify(self, method: str, params: dict) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def open(self, uri: str, text: str) -> None:
        self.notify("textDocument/didOpen",
                    {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})

    def close(self) -> None:
        try:
            self.request("shutdown", {}, timeout=10)
            self.notify("exit", {})
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
