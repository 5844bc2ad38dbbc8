"""Every ```python block of README.md and docs/*.md runs, on tiny data.

The convention (one for every page):

- A block runs in a fresh namespace holding `keras`, `kc` (keras_curriculum), `np` and `tf`, the
  imports of the README's first example, with the current directory a temporary one (files a
  block writes, `logs/` or `model.keras`, go there).
- The names a block takes from its surroundings (a model, data) are declared in an HTML comment
  on the line before the fence, and given tiny objects (`FIXTURES` below: 32 images of 32 x 32 x 3
  in [0, 255], 10 classes, a small CNN that takes any image size):

      <!-- example: needs=model, train -->

- Where a block's numbers are a real run's (300 epochs at 224 px), the same comment says what the
  test runs instead, as literal replacements that must match the block's text:

      <!-- example: needs=model, dataset; replace `epochs=300` => `epochs=5` -->

- A block a page tells the reader to save as a file (`<!-- file: my_recipes.py -->` before
  its fence) is written to that file in the temporary directory, which is on `sys.path`, for
  every block of its page: later blocks import it as the reader's would.
- A block that cannot run offline (it needs a prepared data set) is skipped, with its reason:

      <!-- example: skip (needs the GLUE/RTE data set prepared under TFDS_DATA_DIR) -->

Blocks of other languages (```bash: the suite, the main job; ```text, ```json: output) are not
run. A block without a comment runs with the base namespace only.
"""

import glob
import os
import re
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_curriculum_recipes.models import small_cnn

import keras_curriculum as kc

pytestmark = pytest.mark.recipes  # needs the recipes package: not run on the Keras floor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
)
MARKER = re.compile(r"<!--\s*example:(?P<body>.*?)-->", re.S)
FILE_MARKER = re.compile(r"<!--\s*file:\s*(?P<name>[\w.]+)\s*-->")
REPLACE = re.compile(r"replace\s+`(?P<old>[^`]+)`\s*=>\s*`(?P<new>[^`]*)`")
NUM, SIZE, CLASSES, BATCH = 32, 32, 10, 16


# ---------------------------------------------------------------------------------------------
# Fixtures: name -> builder. Data and models are rebuilt for every block.


def _arrays():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (NUM, SIZE, SIZE, 3)).astype("float32")
    return x, rng.integers(0, CLASSES, NUM)


def _examples():
    return tf.data.Dataset.from_tensor_slices(_arrays())


def _batches():
    return _examples().batch(BATCH)


def _cnn():
    """A small Functional CNN, logits out, any input size (as EfficientTrain needs)."""
    return small_cnn((None, None, 3), num_classes=CLASSES, width=4)


def _compiled_cnn():
    model = _cnn()
    model.compile(
        keras.optimizers.SGD(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


FIXTURES = {
    "x_train": lambda: _arrays()[0],
    "y_train": lambda: _arrays()[1],
    "model": _compiled_cnn,  # compiled (SGD, sparse cross-entropy on logits)
    "resnet": _cnn,  # not compiled
    "my_functional_cnn": _cnn,  # not compiled
    "train": _batches,  # batched (images, labels)
    "val": _batches,
    "test": _batches,
    "train_ds": _batches,
    "val_ds": _batches,
    "dataset": _examples,  # unbatched (image, label) pairs
    "train_examples": _examples,
}


# ---------------------------------------------------------------------------------------------
# Extraction


def _blocks(page):
    """`(line, code, marker body or None)` of every ```python block of `page`."""
    with open(os.path.join(ROOT, page)) as f:
        lines = f.read().split("\n")
    blocks, index = [], 0
    while index < len(lines):
        if lines[index].strip() != "```python":
            index += 1
            continue
        start = index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = MARKER.fullmatch(lines[previous].strip()) if previous >= 0 else None
        blocks.append(
            (
                start + 1,
                "\n".join(lines[start + 1 : end]),
                marker.group("body").strip() if marker else None,
            )
        )
        index = end + 1
    return blocks


def _files(page):
    """`{file name: code}` of the blocks `page` tells the reader to save as files."""
    with open(os.path.join(ROOT, page)) as f:
        lines = f.read().split("\n")
    files = {}
    for index, line in enumerate(lines[:-1]):
        match = FILE_MARKER.fullmatch(line.strip())
        if match and lines[index + 1].strip() == "```python":
            end = next(i for i in range(index + 2, len(lines)) if lines[i].strip() == "```")
            files[match.group("name")] = "\n".join(lines[index + 2 : end])
    return files


def _parse(marker):
    """`(needs, replacements, skip reason)` of a marker body."""
    needs, replacements, skip = [], [], None
    body = (marker or "").strip()
    if body.startswith("skip"):  # the whole body: a reason may hold semicolons
        skip = re.fullmatch(r"skip\s*\((.+)\)", body, re.S)
        if skip is None:
            raise ValueError(f"A skip marker must give its reason: `skip (reason)`: {body!r}")
        return needs, replacements, skip.group(1).strip()
    for part in body.split(";"):
        part = part.strip()
        if not part:
            continue
        if part.startswith("skip"):
            skip = re.fullmatch(r"skip\s*\((.+)\)", part, re.S)
            if skip is None:
                raise ValueError(f"A skip marker must give its reason: `skip (reason)`: {part!r}")
            skip = skip.group(1).strip()
        elif part.startswith("needs="):
            needs = [name.strip() for name in part[len("needs=") :].split(",") if name.strip()]
        elif REPLACE.fullmatch(part):
            match = REPLACE.fullmatch(part)
            replacements.append((match.group("old"), match.group("new")))
        else:
            raise ValueError(f"Unknown part of an example marker: {part!r}")
    return needs, replacements, skip


CASES = [
    pytest.param(page, line, code, marker, id=f"{page}:{line}")
    for page in PAGES
    for line, code, marker in _blocks(page)
]


def test_every_page_with_python_blocks_is_collected():
    assert {"README.md", "docs/getting_started.md", "docs/efficient_train.md"} <= {
        case.values[0] for case in CASES
    }


@pytest.mark.slow
@pytest.mark.parametrize("page, line, code, marker", CASES)
def test_docs_example_runs(page, line, code, marker, tmp_path, monkeypatch):
    needs, replacements, skip = _parse(marker)
    if skip:
        pytest.skip(skip)
    unknown = sorted(set(needs) - set(FIXTURES))
    assert not unknown, f"{page}:{line} needs {unknown}; fixtures are {sorted(FIXTURES)}"
    for old, new in replacements:
        assert old in code, f"{page}:{line}: the marker replaces {old!r}, not in the block"
        code = code.replace(old, new)
    namespace = {"keras": keras, "kc": kc, "np": np, "tf": tf, "__name__": "__docs_example__"}
    namespace.update({name: FIXTURES[name]() for name in needs})
    monkeypatch.chdir(tmp_path)
    files = _files(page)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        monkeypatch.delitem(sys.modules, name.removesuffix(".py"), raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102 - the docs' own code
