"""The tensorlens language server, as installed by its wheel.

The server is a Rust binary that pip puts in the environment's scripts folder (``bin/tensorlens``);
this package only finds it, for ``python -m tensorlens`` and for jupyter-lsp (``tensorlens.jupyter``).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

__all__ = ["BinaryNotFound", "find_binary"]

_NAME = "tensorlens.exe" if os.name == "nt" else "tensorlens"


class BinaryNotFound(Exception):
    """The wheel's binary is not where its installation put it."""


def _recorded() -> list[Path]:
    # The wheel's own record of its files, read from the dist-info beside this package: right for
    # every install scheme (a virtual or conda environment, --user, --prefix), whichever
    # environment, if any, is active.
    here = Path(__file__).resolve().parent.parent
    found = []
    for dist in metadata.distributions(path=[str(here)]):
        if (dist.metadata["Name"] or "").lower() != "tensorlens":
            continue
        for file in dist.files or ():
            if file.name == _NAME and file.parent.name in ("bin", "Scripts"):
                found.append(Path(str(dist.locate_file(file))).resolve())
    return found


def _scripts_dirs() -> list[Path]:
    # Where pip puts scripts for this interpreter, in case the record cannot be read.
    dirs = [Path(sysconfig.get_path("scripts"))]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        dirs.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)))
    return dirs


def find_binary() -> str:
    """The absolute path of the tensorlens binary installed with this package.

    Raises BinaryNotFound, naming the places looked at, when there is none."""
    candidates = _recorded() + [d / _NAME for d in _scripts_dirs()]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates)) or "nowhere"
    raise BinaryNotFound(
        f"the tensorlens binary was not found beside the tensorlens package of {sys.executable} "
        f"(looked at {looked}); reinstall it: {sys.executable} -m pip install --force-reinstall tensorlens"
    )
