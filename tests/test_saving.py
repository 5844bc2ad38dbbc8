"""A `.keras` file holding the package's layers loads in a new process once `keras_curriculum`
is imported, and fails without the import with the Keras error the docs quote."""

import os
import subprocess
import sys

import keras

import keras_curriculum as kc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = "Could not locate class 'GaussianSmoothing'"


def smoothed_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = kc.GaussianSmoothing(sigma=0.7)(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def load_in_new_process(path, imports):
    code = (
        f"{imports}\nimport keras\nmodel = keras.saving.load_model({path!r})\n"
        "print('sigma', round(float(model.layers[2].current_sigma), 4))"
    )
    env = dict(
        os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=keras.backend.backend()
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=str(os.path.dirname(path)),
    )


def test_saved_smoothing_loads_after_the_import_and_not_without_it(tmp_path):
    path = str(tmp_path / "smoothed.keras")
    smoothed_model().save(path)
    loaded = load_in_new_process(path, "import keras_curriculum")
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "sigma 0.7" in loaded.stdout
    failed = load_in_new_process(path, "")
    assert failed.returncode != 0 and MISSING in failed.stderr, failed.stderr[-3000:]
    # The docs quote the error a user meets, word for word (the sentence Keras ends it with).
    sentence = failed.stderr[failed.stderr.index(MISSING) :].split(" Full object config")[0]
    with open(os.path.join(ROOT, "docs", "getting_started.md")) as doc:
        assert sentence in " ".join(doc.read().split())
