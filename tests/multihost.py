"""Runs a function on N JAX processes over 127.0.0.1, or on one process with 4 host devices.

`launch("module:function", kwargs)` starts `num_processes` Python workers
(tests/multihost_worker.py), each with 2 host CPU devices, gloo collectives and
`keras.distribution.initialize` on a free port, then `DataParallel` over every process's
devices; each calls `function(**kwargs)` and writes its JSON-able result.
`single_process(...)` runs the same function once over 4 host devices, the reference a
multi-process run must match.

A collective waiting for a process that will never come hangs forever, so every run has a
deadline: past it the whole process group of each worker is killed and the launch fails with
the workers' output, never a hung test.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(TESTS_DIR, "multihost_worker.py")
DEVICES_PER_PROCESS = 2


class LaunchError(AssertionError):
    """A worker failed, or the run passed its deadline (the workers were killed)."""

    def __init__(self, message, outputs):
        super().__init__(message)
        self.outputs = outputs  # [(returncode, stdout+stderr tail)] per worker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices):
    path = [os.path.dirname(TESTS_DIR), TESTS_DIR, os.environ.get("PYTHONPATH", "")]
    return dict(
        os.environ,
        KERAS_BACKEND="jax",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONHASHSEED="0",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        PYTHONPATH=os.pathsep.join(p for p in path if p),
    )


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run(commands, devices, timeout):
    """Starts every command at once; returns their outputs or raises LaunchError."""
    with tempfile.TemporaryDirectory() as tmp:
        logs, processes = [], []
        try:
            for i, command in enumerate(commands):
                log = open(os.path.join(tmp, f"log{i}"), "w+")
                logs.append(log)
                # Own session: a timeout kills the worker with anything it started.
                processes.append(
                    subprocess.Popen(
                        command + ["--out", os.path.join(tmp, f"out{i}.json")],
                        env=_env(devices),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            deadline = time.monotonic() + timeout
            timed_out = False
            while any(p.poll() is None for p in processes):
                # One failed worker leaves the others waiting in a collective: stop early.
                if any(p.poll() not in (None, 0) for p in processes):
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                time.sleep(0.1)
        finally:
            for p in processes:
                if p.poll() is None:
                    _kill_group(p)
                p.wait()
        outputs = []
        for log, p in zip(logs, processes):
            log.seek(0)
            outputs.append((p.returncode, log.read()[-4000:]))
            log.close()
        if timed_out or any(p.returncode != 0 for p in processes):
            reason = f"deadline of {timeout} s passed" if timed_out else "a worker failed"
            details = "\n".join(
                f"--- worker {i} (exit {rc}):\n{out}" for i, (rc, out) in enumerate(outputs)
            )
            raise LaunchError(f"{reason}\n{details}", outputs)
        results = []
        for i in range(len(processes)):
            with open(os.path.join(tmp, f"out{i}.json")) as f:
                results.append(json.load(f))
        return results


def launch(target, kwargs=None, num_processes=2, timeout=120):
    """`target(**kwargs)` on `num_processes` processes; returns each process's result."""
    port = free_port()
    args = json.dumps(kwargs or {})
    commands = [
        [sys.executable, WORKER, target, "--args", args, "--num-processes", str(num_processes)]
        + ["--process-id", str(i), "--port", str(port)]
        for i in range(num_processes)
    ]
    return _run(commands, DEVICES_PER_PROCESS, timeout)


def single_process(target, kwargs=None, devices=4, timeout=120):
    """`target(**kwargs)` on one process with `DataParallel` over `devices` host devices."""
    command = [sys.executable, WORKER, target, "--args", json.dumps(kwargs or {})]
    return _run([command + ["--num-processes", "1"]], devices, timeout)[0]
