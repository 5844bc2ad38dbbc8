"""The rules a hostile-input table checks, and what changed between two versions of it.

A rule is (entry point, argument, error type, message): the entry point is the first part of
the row's id, the argument the first backquoted name in the message, and the message is cut at
"Received" (the value the row passed). Every row is run as the test runs it (`fit` for the rows
that need the model).

    python tests/hostile_rules.py tests/test_hostile_input.py
    git show BASE:tests/test_hostile_input.py > /tmp/old_table.py
    python tests/hostile_rules.py /tmp/old_table.py tests/test_hostile_input.py

With one table it lists the rules and the rules held by more than one row; with two it also
lists the rules of the first that the second lacks (it exits with 1 if there are any) and
those it adds.
"""

import collections
import importlib.util
import os
import re
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402


def _load(path):
    spec = importlib.util.spec_from_file_location(f"table_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(row, needs_fit):
    keras.utils.set_random_seed(1234)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if needs_fit:
                model, fit_kwargs, callbacks = row.call()
                model.fit(**fit_kwargs, callbacks=callbacks, verbose=0)
            else:
                row.call()
    except Exception as error:  # noqa: BLE001 - the error is the result
        return type(error).__name__, str(error)
    finally:
        keras.backend.clear_session(free_memory=False)
    return None, ""


def rules(path):
    """{rule: [row ids]} of the table in `path`; rows that raised nothing are under None."""
    table = _load(path)
    found = collections.defaultdict(list)
    for needs_fit, cases in ((False, table.CASES), (True, table.FIT_CASES)):
        for row in cases:
            error, message = _run(row, needs_fit)
            if error is None:
                found[None].append(row.id)
                continue
            argument = re.search(r"`([A-Za-z_][\w.]*)", message)
            message = re.sub(r"\s+", " ", message.split("Received")[0]).strip()
            rule = (row.id.split("-")[0], argument.group(1) if argument else "", error, message)
            found[rule].append(row.id)
    return found


def _describe(path, found):
    rows = sum(len(ids) for ids in found.values())
    print(f"{path}: {rows} rows, {len(found)} rules")
    for rule, ids in found.items():
        if rule is None:
            print(f"  raised nothing: {ids}")
        elif len(ids) > 1:
            print(f"  {len(ids)} rows for {rule[:3]}: {ids}")


def main(paths):
    tables = [rules(path) for path in paths]
    for path, found in zip(paths, tables):
        _describe(path, found)
    if len(tables) == 2:
        old, new = tables
        lost = sorted(set(old) - set(new) - {None})
        print(f"rules of {paths[0]} missing from {paths[1]}: {len(lost)}")
        for rule in lost:
            print(f"  {rule} (was {old[rule]})")
        added = sorted(set(new) - set(old) - {None})
        print(f"rules added: {len(added)}")
        for rule in added:
            print(f"  {rule[:3]} {rule[3][:80]!r} ({new[rule]})")
        return 1 if lost else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
