"""The language-server spec jupyter-lsp reads through the ``jupyter_lsp_spec_v1`` entry point.

jupyter-lsp loads this in the Jupyter server's own Python, so the binary found is the one installed
beside it, started by its absolute path whether or not that environment is activated.
"""

from __future__ import annotations

from typing import Any

from . import BinaryNotFound, find_binary

# jupyter-lsp's spec format version (its schema's `current-version`).
SPEC_VERSION = 2


def spec(manager: Any = None) -> dict[str, dict[str, Any]]:
    """The tensorlens spec, keyed by the name JupyterLab's settings use (`language_servers.tensorlens`).

    Without the binary the spec has no command, which jupyter-lsp lists as not installed, with the reason."""
    try:
        argv = [find_binary(), "serve"]
        troubleshoot = "Run `python -m tensorlens --version` in the Jupyter server's environment."
    except BinaryNotFound as err:
        argv = []
        troubleshoot = str(err)
    return {
        "tensorlens": {
            "version": SPEC_VERSION,
            "argv": argv,
            "languages": ["python"],
            "mime_types": ["text/python", "text/x-ipython"],
            "display_name": "tensorlens",
            # The server works on the text it is sent; no shadow copies of notebooks on disk.
            "requires_documents_on_disk": False,
            "troubleshoot": troubleshoot,
            "urls": {"home": "https://github.com/tensorlens/tensorlens"},
            "install": {"pip": "pip install tensorlens"},
        }
    }
