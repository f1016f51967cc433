#!/usr/bin/env python3
"""Looks for prose in catalog/*.toml that also occurs in the real packages' sources (copied text).

The catalog's summaries, `about` texts and `related[].how` lines must be our own words (see
catalog/README.md). This script compares them, as word 8-grams, with the text of every package found
locally under the corpus folder (default: .cache/wheels at the repository root):

  * wheels (*.whl) and sdists (*.tar.gz), anywhere below the folder, are read member by member;
  * every other file below the folder (unpacked packages, loose headers) is read directly;
  * only members ending in .py .pyi .h .hpp .cuh .md .rst .txt are used; members over 5 MB and members
    that look binary (a NUL byte near the start) are skipped.

Both sides are normalised the same way: lower-case, Sphinx roles (:class:) and Doxygen commands (\\p, \\c, @brief)
dropped, every
character that is not part of a word removed (a ' - . or :: between two word characters stays, so
`torch.compile` and `don't` are one token each) and whitespace collapsed. Source texts are used whole:
docstrings, comments and code alike.

An 8-gram counts only when it holds at least 4 purely alphabetic tokens of 3 or more letters, so runs
of identifiers, signatures and numbers never count as prose.

The catalog side is small, so its 8-grams are kept as a set of 64-bit blake2b hashes, and the corpus
is streamed past it: memory stays flat however large the corpus is, and the hits are exactly those a
set of hashed corpus 8-grams would give. Sources are spread over all CPU cores.

Prints one line per copied 8-gram, then a total; exit status 1 when anything was found. When the
corpus folder does not exist (CI machines) it says so and exits 0.

Usage: python3 catalog/tools/copycheck.py [--corpus DIR] [--quiet] [--where] [--jobs N]
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import pathlib
import re
import sys
import tarfile
import tomllib
import zipfile

N = 8
MIN_WORDS = 4                      # alphabetic tokens of >= 3 letters an 8-gram needs to count as prose
MAX_MEMBER = 5 * 1024 * 1024       # bytes; larger members are skipped
TEXT_SUFFIXES = (".py", ".pyi", ".h", ".hpp", ".cuh", ".md", ".rst", ".txt")

CATALOG = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = CATALOG.parent / ".cache" / "wheels"

_ROLE = re.compile(r":[a-z][a-z0-9_.+-]*:(?=`)")            # :class:`x`, :py:func:`y` -> `x`, `y`
_DOXYGEN = re.compile(r"[\\@](?:p|c|e|a|b|em|ref|brief|details|note|param|tparam|return|returns|retval|see|sa)"
                      r"(?:\[(?:in|out|in,out)\])?\s")        # \p name, \c NULL, @brief ... -> the words alone
_ESCAPE = re.compile(r"\\[ntr](?=[A-Z])")                     # "Done.\nReturns" in a string literal
_TOKEN = re.compile(r"\w+(?:(?:::|['.\-])\w+)*")
_WORD = re.compile(r"[a-z]{3,}")


def tokens(text: str) -> list[str]:
    """Lower-cases `text` and splits it into word tokens, dropping all other punctuation."""
    text = _ESCAPE.sub(" ", text).lower().replace("\u2019", "'").replace("\u2018", "'")
    return _TOKEN.findall(_DOXYGEN.sub(" ", _ROLE.sub("", text)))


def key(gram: list[str] | tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(gram).encode("utf-8"), digest_size=8).digest(), "little")


def is_prose(gram: list[str]) -> bool:
    return sum(1 for tok in gram if _WORD.fullmatch(tok)) >= MIN_WORDS


# ---------------------------------------------------------------------------------------------------
# Catalog side


def catalog_texts(catalog: pathlib.Path) -> list[tuple[str, str, str]]:
    """(file name, label, text) for every summary, about and related.how in catalog/*.toml."""
    out: list[tuple[str, str, str]] = []
    for path in sorted(catalog.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except Exception as err:  # noqa: BLE001 - check.py reports parse errors; skip the file here
            print(f"{path.name}: does not parse ({err}); skipped", file=sys.stderr)
            continue
        system = data.get("system", {})
        sysname = str(system.get("name") or system.get("id") or path.stem)
        for field in ("summary", "about"):
            if isinstance(system.get(field), str):
                out.append((path.name, f"{sysname} ({field})", system[field]))
        for rel in system.get("related", []) or []:
            if isinstance(rel, dict) and isinstance(rel.get("how"), str):
                out.append((path.name, f"{sysname} -> {rel.get('system')} (how)", rel["how"]))
        for symbol in data.get("symbols", []) or []:
            if isinstance(symbol, dict) and isinstance(symbol.get("summary"), str):
                out.append((path.name, str(symbol.get("name")), symbol["summary"]))
    return out


def catalog_grams(texts: list[tuple[str, str, str]]) -> dict[int, list[tuple[int, str]]]:
    """Hash of every prose 8-gram -> [(index into texts, the 8 words)]."""
    grams: dict[int, list[tuple[int, str]]] = {}
    for index, (_, _, text) in enumerate(texts):
        toks = tokens(text)
        for i in range(len(toks) - N + 1):
            gram = toks[i:i + N]
            if is_prose(gram):
                grams.setdefault(key(gram), []).append((index, " ".join(gram)))
    return grams


# ---------------------------------------------------------------------------------------------------
# Corpus side

_firsts: frozenset[str] = frozenset()
_keys: frozenset[int] = frozenset()


def _init(firsts: frozenset[str], keys: frozenset[int]) -> None:
    global _firsts, _keys
    _firsts, _keys = firsts, keys


def _wanted(name: str, size: int) -> bool:
    return name.lower().endswith(TEXT_SUFFIXES) and size <= MAX_MEMBER


def _scan(raw: bytes, where: str, found: dict[int, str], seen: set[bytes]) -> None:
    if b"\0" in raw[:8192]:
        return                                              # binary despite its name
    digest = hashlib.blake2b(raw, digest_size=16).digest()
    if digest in seen:
        return                                              # same file already read (unpacked copy)
    seen.add(digest)
    toks = tokens(raw.decode("utf-8", errors="replace"))
    firsts, keys = _firsts, _keys
    for i in range(len(toks) - N + 1):
        if toks[i] in firsts:
            k = key(toks[i:i + N])
            if k in keys and k not in found:
                found[k] = where


def _members(source: str):
    """Yields (member name, bytes) for the text members of one archive or one plain file."""
    lower = source.lower()
    try:
        if lower.endswith(".whl"):
            with zipfile.ZipFile(source) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and _wanted(info.filename, info.file_size):
                        yield info.filename, zf.read(info)
        elif lower.endswith(".tar.gz"):
            with tarfile.open(source, "r|gz") as tf:              # streamed: no random access needed
                for info in tf:
                    if info.isfile() and _wanted(info.name, info.size):
                        handle = tf.extractfile(info)
                        if handle is not None:
                            yield info.name, handle.read()
        elif _wanted(source, os.path.getsize(source)):
            with open(source, "rb") as fh:
                yield "", fh.read()
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        print(f"copycheck: cannot read {source}: {err}", file=sys.stderr)


def _work(batch: list[str]) -> dict[int, str]:
    found: dict[int, str] = {}
    seen: set[bytes] = set()
    for source in batch:
        for member, raw in _members(source):
            _scan(raw, f"{source}!{member}" if member else source, found, seen)
    return found


def corpus_sources(root: pathlib.Path) -> list[str]:
    """Archives and loose text files below `root`, recursively (symlinked folders are not followed)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            lower = name.lower()
            if lower.endswith((".whl", ".tar.gz")) or lower.endswith(TEXT_SUFFIXES):
                out.append(os.path.join(dirpath, name))
    return out


def batches(sources: list[str]) -> list[list[str]]:
    """Archives one per batch (big first), loose files grouped by folder in batches of ~200."""
    archives = [s for s in sources if s.lower().endswith((".whl", ".tar.gz"))]
    archives.sort(key=lambda s: -os.path.getsize(s))
    out = [[s] for s in archives]
    loose = [s for s in sources if not s.lower().endswith((".whl", ".tar.gz"))]
    for i in range(0, len(loose), 200):
        out.append(loose[i:i + 200])
    return out


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="Reports catalog prose (8-word runs) found in local package sources.")
    parser.add_argument("--corpus", type=pathlib.Path, default=DEFAULT_CORPUS,
                        help=f"folder with wheels, sdists and unpacked packages (default: {DEFAULT_CORPUS})")
    parser.add_argument("--quiet", action="store_true", help="print only the total line (and errors)")
    parser.add_argument("--where", action="store_true", help="append the corpus file each 8-gram was found in")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    args = parser.parse_args()

    if not args.corpus.is_dir():
        print(f"copycheck: corpus folder {args.corpus} does not exist; nothing to compare against, skipping.")
        return 0

    texts = catalog_texts(CATALOG)
    grams = catalog_grams(texts)
    firsts = frozenset(words.split(" ", 1)[0] for entries in grams.values() for _, words in entries)
    sources = corpus_sources(args.corpus)
    work = batches(sources)

    found: dict[int, str] = {}
    if args.jobs <= 1:
        _init(firsts, frozenset(grams))
        for batch in work:
            for k, where in _work(batch).items():
                found.setdefault(k, where)
    else:
        with multiprocessing.Pool(args.jobs, initializer=_init, initargs=(firsts, frozenset(grams))) as pool:
            for result in pool.imap_unordered(_work, work):
                for k, where in result.items():
                    found.setdefault(k, where)

    hits: list[tuple[int, int, str, str]] = []                  # (text index, order, words, where)
    for k, where in found.items():
        for index, words in grams[k]:
            hits.append((index, len(hits), words, where))
    hits.sort()
    if not args.quiet:
        for index, _, words, where in hits:
            file, label, _ = texts[index]
            suffix = f"  [{os.path.relpath(where.split('!', 1)[0], args.corpus)}" \
                     f"{'!' + where.split('!', 1)[1] if '!' in where else ''}]" if args.where else ""
            print(f'{file}: {label}: "{words}"{suffix}')
    fields = len({index for index, *_ in hits})
    print(f"copycheck: {len(hits)} copied 8-gram(s) in {fields} text field(s); "
          f"{len(texts)} catalog texts checked against {len(sources)} corpus file(s) under {args.corpus}")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
