"""Every curriculum on JAX's multi-process runtime: 2 processes on 127.0.0.1, 2 CPU devices each.

Each run (tests/multihost_runs.py, on tests/scale_runs.py's models and data) must follow the
same curriculum as one process over the same 4 devices (`DataParallel`): the curriculum logs
and steps per epoch exactly, DoCL's drawn order of every epoch exactly, weights and DoCL's
scores within a tolerance set from an A/A run (below). Configurations whose last global batch
would reach only some processes, and so hang the others in a collective, are refused before
the first step. The workers are JAX subprocesses whatever the parent's backend; they run
serially (`-m multihost`, see scripts/test.sh): 4 CPU devices' worth of processes at once.
"""

from concurrent.futures import ThreadPoolExecutor

import multihost
import multihost_runs
import numpy as np
import pytest

from checks import assert_same_recorded

pytestmark = [pytest.mark.multihost, pytest.mark.slow]

CONFIGS = (
    "lerac",
    "cbs",
    "lerac+cbs",
    "efficient_train",
    multihost_runs.SATURATED,
    "docl",
)
AA_CONFIGS = ("docl",)  # weights and scores; one config keeps the file within 3 minutes
# The A/A run (test_two_process_runs_are_deterministic) is bit-identical, so a difference from
# the single-process run is the order in which the gradient's parts are summed (within one
# process vs across processes over gloo): measured at most 1e-7 of a weight and 6e-7 of a DoCL
# score after 16 steps. The tolerance is 100x that, and the logs and step counts, which are
# compared exactly, catch a curriculum out of line.
WEIGHTS_ATOL, SCORES_ATOL = 1e-5, 1e-4


@pytest.fixture(scope="module")
def both_runs():
    # At once: the workers spend much of their time compiling or waiting on each other, and
    # the file stays within about 3 minutes on 2 cores (102 s one after the other, 70 s at once).
    args = ("multihost_runs:runs", {"configs": list(CONFIGS)})
    with ThreadPoolExecutor(2) as pool:
        two = pool.submit(multihost.launch, *args, timeout=300)
        one = pool.submit(multihost.single_process, *args, timeout=300)
        return two.result(), one.result()


@pytest.fixture(scope="module")
def two_processes(both_runs):
    return both_runs[0]


@pytest.fixture(scope="module")
def one_process(both_runs):
    return both_runs[1]


def assert_weights_close(got, want, atol, label):
    assert want and len(got) == len(want), label
    for g, w in zip(got, want):
        assert_same_recorded(np.array(g), np.array(w), atol=atol, err_msg=label)


@pytest.mark.parametrize("config", CONFIGS)
def test_two_processes_follow_the_single_process_curriculum(config, two_processes, one_process):
    want = one_process[config]
    assert want["logs"] and len(want["steps"]) == 4
    for process, states in enumerate(two_processes):
        got = states[config]
        assert got["process"] == process
        assert got["logs"] == want["logs"], (process, got["logs"], want["logs"])
        # Every process takes the same number of steps in each epoch: the stage switches,
        # DoCL's shorter epochs and the saturated batches happen at the same step everywhere.
        assert got["steps"] == want["steps"], (process, got["steps"])
        # Each process fed its part: the step trained on the single-process global batch (a
        # process feeding the whole batch would double it, and every step's work, unseen by
        # the weights: the mean of two copies is the mean of one).
        assert got["global_rows"] == want["global_rows"], (process, got["global_rows"])
        assert_weights_close(got["weights"], want["weights"], WEIGHTS_ATOL, f"{config} p{process}")


def test_curricula_cross_their_boundaries_in_these_runs(one_process):
    # The comparison above means something only if each run crosses its curriculum's changes.
    runs = one_process
    assert runs["lerac"]["logs"]["lerac_lr_last"][0] < runs["lerac"]["logs"]["lerac_lr_last"][2]
    assert runs["cbs"]["logs"]["cbs_sigma"] == [1.0, 0.5, 0.25, 0.125]
    assert runs["efficient_train"]["logs"]["et_height"] == [8.0, 12.0, 16.0, 16.0]
    assert runs[multihost_runs.SATURATED]["steps"][0] < runs[multihost_runs.SATURATED]["steps"][2]
    assert runs["docl"]["steps"] == [4, 2, 4, 1]
    assert runs["lerac"]["global_rows"] == [8] * 4
    assert runs[multihost_runs.SATURATED]["global_rows"][0] == 32


def test_docl_draws_and_scores_are_the_same_on_every_process(two_processes, one_process):
    want = one_process["docl"]
    assert [len(order) for order in want["docl_orders"]] == [32, 16, 32, 8]
    for process, states in enumerate(two_processes):
        got = states["docl"]
        # Same per-example state on every process: each sees the whole global batch's logits.
        assert got["docl_orders"] == want["docl_orders"], process
        assert_same_recorded(
            np.array(got["docl_scores"]),
            np.array(want["docl_scores"]),
            atol=SCORES_ATOL,
            err_msg=f"DoCL scores, process {process}",
        )


def test_two_process_runs_are_deterministic(two_processes):
    again = multihost.launch("multihost_runs:runs", {"configs": list(AA_CONFIGS)}, timeout=300)
    for process in range(2):
        for config in AA_CONFIGS:
            first, second = two_processes[process][config], again[process][config]
            assert first["logs"] == second["logs"]
            assert_weights_close(second["weights"], first["weights"], 0.0, f"A/A {config}")
            if config == "docl":
                assert first["docl_orders"] == second["docl_orders"]
                assert first["docl_scores"] == second["docl_scores"]


def test_configurations_that_would_hang_are_refused_before_the_first_step():
    results = multihost.launch("multihost_runs:refusals", timeout=200)
    # Every process refuses alike, so none waits for another; and an unseeded DoCL draws
    # from one seed on every process.
    assert results[0] == results[1]
    refused = results[0]
    for case in ("split_partial", "docl_partial", "et_partial_batched", "et_evaluation_partial"):
        assert refused[case].startswith("ValueError") and "drop_remainder=True" in refused[case]
    assert "smallest subset (7 examples" in refused["docl_subset_below_a_batch"]
    for case in ("split_not_divisible", "docl_not_divisible"):
        assert refused[case].startswith("ValueError: `batch_size` (6, the global batch)"), case
        assert "multiple of the 4 devices" in refused[case]
    for case in ("et_partial", "et_saturated_partial"):
        assert refused[case]["steps"] == 0
        assert (
            "partial batch" in refused[case]["error"]
            and "drop_remainder=True" in (refused[case]["error"])
        )
    assert "Stage batches: [32, 8, 8]" in refused["et_saturated_partial"]["error"]
    assert refused["docl_auto_sharded"]["steps"] == 0
    assert "auto_shard_dataset=False" in refused["docl_auto_sharded"]["error"]
    # Keras's own split loses the length LeRaC counts epochs in: the error says what to use.
    assert refused["lerac_auto_sharded"]["steps"] == 0
    assert "kc.split_batches(dataset)" in refused["lerac_auto_sharded"]["error"]


def test_a_hung_collective_fails_the_launch_instead_of_hanging():
    with pytest.raises(multihost.LaunchError, match="deadline of 15 s passed"):
        multihost.launch("multihost_runs:hang", timeout=15)


def test_resume_after_an_epoch_end_gives_the_uninterrupted_run(two_processes, tmp_path):
    # Interrupted after epoch 1 on both processes, resumed with fresh model, data and callbacks
    # from one backup directory per process (`BackupAndRestore`, DoCL's `backup_dir`).
    configs = ["lerac+cbs", "docl"]
    resumed = multihost.launch(
        "multihost_runs:resumed", {"configs": configs, "directory": str(tmp_path)}, timeout=300
    )
    for process in range(2):
        for config in configs:
            got, want = resumed[process][config], two_processes[process][config]
            assert got["logs"] == {k: v[2:] for k, v in want["logs"].items()}, config
            assert got["steps"] == want["steps"][2:], config
            assert_weights_close(got["weights"], want["weights"], 0.0, f"resumed {config}")
            if config == "docl":
                assert got["docl_orders"] == want["docl_orders"][2:]
                assert got["docl_scores"] == want["docl_scores"]
