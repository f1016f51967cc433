"""``python -m tensorlens ARGS``: runs the tensorlens binary of this environment with ARGS."""

from __future__ import annotations

import os
import subprocess
import sys

from . import BinaryNotFound, find_binary


def main() -> int:
    try:
        binary = find_binary()
    except BinaryNotFound as err:
        print(f"tensorlens: {err}", file=sys.stderr)
        return 1
    args = [binary, *sys.argv[1:]]
    if os.name == "nt":
        return subprocess.call(args)
    # Replacing this process keeps stdin/stdout (an editor's LSP pipe) and signals the binary's own.
    os.execv(binary, args)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
