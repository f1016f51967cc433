#!/usr/bin/env python3
"""Which dotted names exist at run time, and which warn that they are deprecated when accessed.

    VENV/bin/python catalog/audit/runtime_names.py < names.json   # a JSON list of dotted names

Run it with the Python of a venv that has the package installed at the version of its facts file. For
each name it imports the longest importable module prefix and reads the rest as attributes, recording
DeprecationWarning/FutureWarning that mention the name. Prints {name: true | false | "deprecated"}. This
is the evidence behind the phantom-name entries of catalog/audit/exceptions.toml.
"""
import importlib
import json
import sys
import warnings

warnings.simplefilter("always")
res = {}
for name in json.load(sys.stdin):
    parts = name.split(".")
    obj = None
    found = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except Exception:  # noqa: BLE001 - not importable under this prefix: try a shorter one
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
                found = True
            except Exception:  # noqa: BLE001 - the attribute chain breaks: the name does not exist
                found = False
            break
    deprecated = any(issubclass(w.category, (DeprecationWarning, FutureWarning)) and parts[-1] in str(w.message)
                     for w in caught)
    res[name] = "deprecated" if found and deprecated else found
json.dump(res, sys.stdout)
