"""Every `kc.X` / `keras_curriculum.X` name the README and docs mention is reachable exactly as
written, after `import keras_curriculum as kc` and nothing else (issue 15, item 3)."""

import glob
import os
import re

import pytest

import keras_curriculum as kc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
NAME = re.compile(r"\b(?:kc|keras_curriculum)(?:\.[A-Za-z_]\w*)+")
# Not Python names: the entry-point group recipes register under (docs/adding_a_recipe.md).
NOT_NAMES = {"keras_curriculum.recipes"}


def _documented():
    names = {}
    for page in PAGES:
        with open(os.path.join(ROOT, page)) as handle:
            for name in NAME.findall(handle.read()):
                names.setdefault(name, os.path.relpath(page, ROOT))
    return sorted((name, page) for name, page in names.items() if name not in NOT_NAMES)


def test_the_docs_mention_names_to_check():
    assert len(_documented()) >= 20


@pytest.mark.parametrize("name, page", _documented())
def test_documented_name_is_reachable_as_written(name, page):
    # Attribute access only, from the one import the docs start with: a submodule the
    # package does not import itself would fail here, as it does for a user.
    obj = kc
    for part in name.split(".")[1:]:
        assert hasattr(obj, part), f"{page} uses `{name}`: `{part}` is missing"
        obj = getattr(obj, part)
