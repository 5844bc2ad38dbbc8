"""Runs a check under `tf.distribute` with two logical CPUs, in a fresh TensorFlow interpreter.

Logical devices must be configured before TensorFlow initialises, which the test process has
already done, so the check runs in a subprocess. It is TensorFlow's, so it runs in the
TensorFlow pass of the suite only (the other passes report it as skipped).
"""

import os
import subprocess
import sys

import keras
import pytest

_PREAMBLE = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {tests_dir!r})
"""

only_in_tensorflow_pass = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.distribute check: runs in a TensorFlow subprocess, once, in the TensorFlow pass",
)


def run_two_replica_check(script, expect="replicas 2 OK", timeout=300):
    """Runs `script` (after the 2-logical-CPU preamble) and asserts it printed `expect`."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    code = _PREAMBLE.format(tests_dir=tests_dir) + script
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join([os.path.dirname(tests_dir), tests_dir]),
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert result.returncode == 0 and expect in result.stdout, result.stderr[-3000:]
