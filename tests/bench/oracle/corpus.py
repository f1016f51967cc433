#!/usr/bin/env python3
"""The oracle corpus: real projects' sources from PyPI (corpus.json), fetched into .cache/oracle/corpus.

    corpus.py fetch    downloads and extracts every project once
    corpus.py list     prints each measured file's path, one per line
"""
import hashlib
import json
import pathlib
import sys
import tarfile
import urllib.request
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[3]
HERE = pathlib.Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "oracle"
SOURCE_SUFFIXES = (".py", ".pyi", ".json", ".yaml", ".toml", ".txt")


def projects() -> list[dict]:
    return json.loads((HERE / "corpus.json").read_text())["projects"]


def project_dir(p: dict) -> pathlib.Path:
    return CACHE / "corpus" / f"{p['package']}-{p['version']}"


def download(p: dict) -> pathlib.Path:
    archives = CACHE / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    stem = p["package"].lower().replace("-", "_")

    def ours(filename: str) -> bool:
        # `name-1.2.tar.gz`, `name_1.2-py3-none-any.whl`: the name and the exact version.
        head = f"{stem}_{p['version']}"
        norm = filename.lower().replace("-", "_")
        return norm.startswith(head) and not norm[len(head):len(head) + 1].isdigit()

    def found() -> list[pathlib.Path]:
        return [a for a in archives.iterdir()
                if ours(a.name) and a.name.endswith(".whl" if p["archive"] == "wheel" else ".tar.gz")]

    if not found():
        # Straight from PyPI's simple API: `pip download` of an sdist would build its metadata.
        request = urllib.request.Request(f"https://pypi.org/simple/{p['package']}/",
                                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        listing = json.load(urllib.request.urlopen(request, timeout=60))["files"]
        suffix = ".whl" if p["archive"] == "wheel" else ".tar.gz"
        url = next(f for f in listing if f["filename"].endswith(suffix) and ours(f["filename"]))
        data = urllib.request.urlopen(url["url"], timeout=300).read()
        if hashlib.sha256(data).hexdigest() != url["hashes"]["sha256"]:
            sys.exit(f"corpus: {url['filename']}: the download does not match PyPI's sha256")
        (archives / url["filename"]).write_bytes(data)
    return found()[0]


def extract(archive: pathlib.Path, into: pathlib.Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into, [m for m in zf.namelist() if m.endswith(SOURCE_SUFFIXES) and ".." not in m])
        return
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(SOURCE_SUFFIXES)]
        tf.extractall(into, members, filter="data")
    # An sdist holds one top folder `name-version/`: lift its contents up.
    tops = [d for d in into.iterdir() if d.is_dir()]
    if len(tops) == 1 and not (into / "setup.py").exists():
        top = tops[0]
        for child in top.iterdir():
            child.rename(into / child.name)
        top.rmdir()


def fetch() -> None:
    for p in projects():
        target = project_dir(p)
        if all((target / f).is_file() for f in p["files"]):
            continue
        extract(download(p), target)
        missing = [f for f in p["files"] if not (target / f).is_file()]
        if missing:
            sys.exit(f"corpus: {p['package']} {p['version']} has no {', '.join(missing)}")
    print(f"corpus: {sum(len(p['files']) for p in projects())} files from {len(projects())} projects in {CACHE / 'corpus'}")


def files() -> list[tuple[dict, pathlib.Path]]:
    return [(p, project_dir(p) / f) for p in projects() for f in p["files"]]


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "list"
    if command == "fetch":
        fetch()
    elif command == "list":
        for _, path in files():
            print(path)
    else:
        sys.exit(f"usage: {sys.argv[0]} fetch|list")
