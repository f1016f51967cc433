#!/usr/bin/env python3
"""Checks the editor set-ups that have no plugin of their own, as far as this machine allows.

- The server's settings names come from the binary (`tensorlens settings --json`, its table in
  server/src/settings.rs); the Neovim plugin must send only those, and the snippets in
  editors/README.md may use no others.
- The Helix snippet must parse as TOML (tomllib) and the Zed one as JSON, both naming `tensorlens serve`
  and listing the server for Python, C and C++; the eglot one must be balanced Lisp naming it too.
- Where Emacs with eglot is installed, the eglot snippet is loaded as it is in `emacs --batch` and used
  against the real server: hovers in a Python and a CUDA file, and NVRTC found through the
  initializationOptions it sets. Where it is not, that part says so and is skipped.

Usage: editor_snippets.py REPO BIN TOOLKIT WORK
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

PLACEHOLDER_NVRTC = "/home/you/.venvs/ml/lib/python3.12/site-packages/nvidia/cu13"

checks = 0


def ok(message):
    global checks
    checks += 1
    print(f"  ok {checks:2d}: {message}", flush=True)


def fail(message):
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


def check(condition, message, detail=None):
    if not condition:
        fail(message + (f"\n    got: {detail}" if detail is not None else ""))
    ok(message)


def server_settings(bin_path):
    """The settings the server reads, from its own table (`tensorlens settings --json`)."""
    result = subprocess.run([bin_path, "settings", "--json"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        fail(f"{bin_path} settings --json failed:\n{result.stderr}")
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {row["key"] for row in rows}, {row["key"] for row in rows if row["source"] == "user"}


def blocks(readme, language):
    return re.findall(r"```" + language + r"\n(.*?)```", readme, re.S)


def lisp_is_balanced(text):
    depth, i, in_string = 0, 0, False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == ";":
            while i < len(text) and text[i] != "\n":
                i += 1
        elif c == "?" and i + 1 < len(text):
            i += 1  # a character literal such as ?( is not a paren
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0 and not in_string


EGLOT_TEST = r"""
(setq debug-on-error nil)
(require 'eglot)
(load-file (getenv "TL_SNIPPET"))
(defun tl-say (text) (princ (concat text "\n") #'external-debugging-output))
(defun tl-fail (text) (tl-say (concat "FAILED: " text)) (kill-emacs 1))
(defun tl-server ()
  (or (eglot-current-server)
      (progn (apply #'eglot (eglot--guess-contact)) (eglot-current-server))
      (tl-fail (format "no eglot server for %s" buffer-file-name))))
(defun tl-hover (file needle offset expected)
  (find-file file)
  (let ((server (tl-server)))
    (goto-char (point-min))
    (search-forward needle)
    (goto-char (+ (match-beginning 0) offset))
    (let* ((answer (jsonrpc-request server :textDocument/hover (eglot--TextDocumentPositionParams)))
           (contents (plist-get answer :contents))
           (text (if (stringp contents) contents (plist-get contents :value))))
      (if (and text (string-match-p (regexp-quote expected) text))
          (tl-say (format "eglot: %s (%s, language id %s): the hover at %s shows %s"
                          (file-name-nondirectory file) major-mode (eglot--language-id server) needle expected))
        (tl-fail (format "hover at %s in %s: %S" needle file answer))))
    server))
(tl-hover (concat (getenv "TL_WORK") "/train.py") "F.gelu" 3 "torch.nn.functional.gelu")
(let* ((server (tl-hover (concat (getenv "TL_WORK") "/gemm.cu") "__shfl_down_sync" 3 "__shfl_down_sync"))
       (toolchain (jsonrpc-request server :workspace/executeCommand '(:command "tensorlens.kernelToolchain")))
       (nvrtc (plist-get (plist-get toolchain :nvrtc) :Ok)))
  (if (and nvrtc (string-prefix-p (getenv "TL_TOOLKIT") (plist-get nvrtc :path)))
      (tl-say (format "eglot: the snippet's nvrtcPath reached the server (NVRTC %s found there)" (plist-get nvrtc :version)))
    (tl-fail (format "toolchain: %S" toolchain)))
  (eglot-shutdown server))
(kill-emacs 0)
"""


def run_eglot(snippet, bin_path, toolkit, work):
    emacs = shutil.which("emacs")
    if not emacs:
        print("  skipped: the eglot snippet in Emacs (no emacs on PATH; `apt-get install emacs-nox elpa-eglot`)")
        return
    probe = subprocess.run([emacs, "--batch", "--eval", "(require 'eglot)"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("  skipped: the eglot snippet in Emacs (this Emacs has no eglot; `apt-get install elpa-eglot`)")
        return
    version = subprocess.run([emacs, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    with tempfile.TemporaryDirectory() as scratch:
        snippet_file = os.path.join(scratch, "tensorlens-eglot.el")
        # The snippet as the README has it; only the placeholder path becomes this machine's NVRTC.
        with open(snippet_file, "w", encoding="utf-8") as out:
            out.write(snippet.replace(PLACEHOLDER_NVRTC, toolkit))
        test_file = os.path.join(scratch, "test.el")
        with open(test_file, "w", encoding="utf-8") as out:
            out.write(EGLOT_TEST)
        env = dict(os.environ, HOME=scratch, TL_SNIPPET=snippet_file, TL_WORK=work, TL_TOOLKIT=toolkit)
        env["PATH"] = os.path.dirname(bin_path) + os.pathsep + env.get("PATH", "")
        for name in ("CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH"):
            env.pop(name, None)
        try:
            result = subprocess.run(
                [emacs, "--batch", "-l", test_file], env=env, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            fail("Emacs with the eglot snippet did not finish within 60 s")
        said = [line for line in result.stderr.splitlines() if line.startswith(("eglot:", "FAILED"))]
        if result.returncode != 0 or len(said) != 3:
            fail(f"the eglot snippet in {version}:\n{result.stderr[-3000:]}")
        for line in said:
            ok(f"{version}, {line}")


def main():
    repo, bin_path, toolkit, work = sys.argv[1:5]
    settings, user_settings = server_settings(bin_path)
    check(len(settings) >= 8, f"the server reads {len(settings)} settings: {', '.join(sorted(settings))}")

    plugin_config = open(os.path.join(repo, "editors/neovim/lua/tensorlens/config.lua"), encoding="utf-8").read()
    keys = re.search(r"M\.server_keys = \{(.*?)\}", plugin_config, re.S)
    plugin_keys = set(re.findall(r"'(\w+)'", keys.group(1))) if keys else set()
    check(
        len(plugin_keys) >= 8 and plugin_keys <= settings,
        f"the Neovim plugin sends {len(plugin_keys)} settings, all of them the server's",
        sorted(plugin_keys - settings),
    )
    if user_settings - plugin_keys:
        print(f"  note: server settings the Neovim plugin does not offer yet: {', '.join(sorted(user_settings - plugin_keys))}")

    readme = open(os.path.join(repo, "editors/README.md"), encoding="utf-8").read()

    (helix,) = blocks(readme, "toml")
    config = tomllib.loads(helix)
    server = config["language-server"]["tensorlens"]
    check(server["command"] == "tensorlens" and server["args"] == ["serve"], "Helix: runs `tensorlens serve`")
    check(set(server.get("config", {})) <= settings, "Helix: its config names only server settings", server)
    languages = {lang["name"]: lang["language-servers"] for lang in config["language"]}
    check(
        all("tensorlens" in languages.get(name, []) for name in ("python", "c", "cpp")),
        "Helix: tensorlens is listed for python, c and cpp",
        languages,
    )

    (zed,) = blocks(readme, "json")
    zed_settings = json.loads(zed)
    lsp = zed_settings["lsp"]["tensorlens"]
    check(lsp["binary"]["arguments"] == ["serve"], "Zed: runs `tensorlens serve`")
    named = set(lsp["initialization_options"]) | set(lsp["settings"]["tensorlens"])
    check(named <= settings, "Zed: names only server settings", sorted(named))
    check(
        all("tensorlens" in zed_settings["languages"][name]["language_servers"] for name in ("Python", "C++", "C")),
        "Zed: tensorlens is listed for Python, C++ and C",
    )

    (eglot,) = blocks(readme, "elisp")
    check(lisp_is_balanced(eglot), "eglot: the snippet is balanced Lisp")
    check('("tensorlens" "serve"' in eglot, "eglot: runs `tensorlens serve`")
    named = set(re.findall(r":(\w+) ", eglot)) - {"initializationOptions", "tensorlens"}
    check(named and named <= settings, "eglot: its settings are server settings", named)
    run_eglot(eglot, bin_path, toolkit, work)
    print(f"all {checks} editor snippet checks passed", flush=True)


if __name__ == "__main__":
    main()
