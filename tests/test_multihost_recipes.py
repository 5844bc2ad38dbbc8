"""`kc-recipes --num-processes 2`: the runner on 2 JAX processes of this machine.

Marked `multihost` (run serially by scripts/test.sh after the JAX leg) and `recipes`. The
package's part, every curriculum matching its single-process run, is tests/test_multihost.py;
this checks that the runner starts the processes, trains the curricula whose data it splits
(LeRaC: the runner's plain batches; DoCL: its own stage) and writes its results once.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.multihost, pytest.mark.recipes, pytest.mark.slow]


def test_the_runner_trains_on_two_processes_and_writes_once(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "keras_curriculum_recipes", "--recipe", "fashion_mnist"]
    command += ["--methods", "lerac,docl", "--epochs", "2", "--seeds", "1"]
    command += ["--train-size", "640", "--num-processes", "2", "--out", str(out), "--verbose", "0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    runner = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = runner.communicate(timeout=400)
    finally:  # the runner's processes must not outlive a failed test
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.communicate()
    assert runner.returncode == 0, output[-4000:]
    assert output.count("Written to") == 1, output[-4000:]  # process 0 only
    assert "(jax backend, 2 processes)" in (out / "table.md").read_text()
    results = {r["method"]: r for r in json.loads((out / "results.json").read_text())}
    assert set(results) == {"lerac", "docl"}
    assert 0.0 <= results["lerac"]["accuracy"] <= 1.0
    assert results["docl"]["history"]["docl_fraction"][0] == 1.0
    assert len(results["lerac"]["history"]["lerac_lr_first"]) == 2
