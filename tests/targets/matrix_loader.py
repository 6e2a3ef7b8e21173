"""Loads a matrix written by matrix_script.py with plain pickle, in an
interpreter that may not have flightpickle, and prints, as a plain pickle on
stdout, ``{name: (result, reloads_as_same_object)}`` or the error text."""

import pickle
import sys
import traceback

with open(sys.argv[1], "rb") as file:
    table = pickle.load(file)
results = {}
for name, (payload, _expected, _tracked) in table.items():
    try:
        obj, probe = pickle.loads(payload)
        again, _ = pickle.loads(payload)
        results[name] = ("ok", probe(obj), again is obj)
    except Exception:
        results[name] = ("error", traceback.format_exc(), None)
sys.stdout.buffer.write(pickle.dumps(results, protocol=2))
