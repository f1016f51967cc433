#!/usr/bin/env python3
"""The CUDA corpus: real libraries' CUDA sources from PyPI sdists (corpus.json), fetched into
.cache/cuda_calls/corpus.

    corpus.py fetch    downloads (checking the pinned sha256) and extracts each project's CUDA files
    corpus.py list     prints each measured file's path, one per line
"""
import hashlib
import json
import pathlib
import sys
import tarfile
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[3]
HERE = pathlib.Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "cuda_calls"
CUDA_SUFFIXES = (".cu", ".cuh")


def projects() -> list[dict]:
    return json.loads((HERE / "corpus.json").read_text())["projects"]


def project_dir(p: dict) -> pathlib.Path:
    return CACHE / "corpus" / f"{p['package']}-{p['version']}"


def archive_name(p: dict) -> str:
    return f"{p['package'].replace('-', '_')}-{p['version']}.tar.gz"


def download(p: dict) -> pathlib.Path:
    archives = CACHE / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    target = archives / archive_name(p)
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == p["sha256"]:
        return target
    request = urllib.request.Request(f"https://pypi.org/simple/{p['package']}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    listing = json.load(urllib.request.urlopen(request, timeout=60))["files"]
    url = next((f for f in listing if f["filename"] == target.name), None)
    if url is None:
        sys.exit(f"cuda corpus: PyPI has no {target.name}")
    data = urllib.request.urlopen(url["url"], timeout=600).read()
    # The pin is ours, not PyPI's: a re-uploaded archive must not change the corpus silently.
    if hashlib.sha256(data).hexdigest() != p["sha256"]:
        sys.exit(f"cuda corpus: {target.name} does not match the sha256 pinned in corpus.json")
    target.write_bytes(data)
    return target


def extract(p: dict, archive: pathlib.Path) -> None:
    into = project_dir(p)
    top = f"{archive.name.removesuffix('.tar.gz')}/{p['root']}/"
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers()
                   if m.isfile() and m.name.startswith(top) and m.name.endswith(CUDA_SUFFIXES)]
        if not members:
            sys.exit(f"cuda corpus: {archive.name} has no CUDA files under {p['root']}")
        for m in members:
            m.name = m.name[len(top):]
        tf.extractall(into, members, filter="data")
    (into / ".complete").write_text(p["sha256"])


def fetch() -> None:
    for p in projects():
        marker = project_dir(p) / ".complete"
        if marker.is_file() and marker.read_text() == p["sha256"]:
            continue
        extract(p, download(p))
    print(f"cuda corpus: {len(files())} files from {len(projects())} projects in {CACHE / 'corpus'}")


def files() -> list[tuple[dict, pathlib.Path]]:
    return [(p, path) for p in projects()
            for path in sorted(project_dir(p).rglob("*")) if path.suffix in CUDA_SUFFIXES]


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "list"
    if command == "fetch":
        fetch()
    elif command == "list":
        for _, path in files():
            print(path)
    else:
        sys.exit(f"usage: {sys.argv[0]} fetch|list")
