"""Which DoCL state a `fit` starts from: the one of the epoch the model resumes at, or an error.

`keras.callbacks.BackupAndRestore` saves the model and the epoch; DoCL saves its per-example
state in the same directory (`backup_dir`) with the epoch it is ready to start, and keeps the
state of the epoch before as well. At the first epoch of a `fit` (the one Keras resumes at),
`state_for_epoch` loads the state of exactly that epoch, or refuses to go on: DoCL's scores
from another epoch, or none at all, would silently draw the wrong subsets.
"""

import warnings

from keras_curriculum.docl.state import ExampleState


def state_for_epoch(state, directory, num_examples, epoch, restored):
    """Loads or keeps the state of `epoch`; the saved seed when one was loaded, else None.

    Args:
        state: the `ExampleState` in memory (fresh, or left by an earlier `fit`).
        directory: DoCL's `backup_dir`, or None.
        num_examples: examples of the training set.
        epoch: the first epoch of this `fit`.
        restored: whether `BackupAndRestore` restored that epoch.
    """
    saved = {e: path for e, (path, n) in ExampleState.saved(directory).items() if n == num_examples}
    if epoch in saved:
        return state.restore(saved[epoch])
    if epoch == 0:
        if saved:
            warnings.warn(
                f"DoCL: `backup_dir` holds a state saved for epoch {max(saved)}, but `fit` "
                "starts at epoch 0: DoCL starts from its current state and the saved one is "
                "not used (see docs/backends.md for backups that restore no epoch).",
                stacklevel=3,
            )
        return None
    if state.allocated and state.next_epoch == epoch:
        return None  # the state of an earlier `fit` that stopped where this one starts
    found = ExampleState.saved(directory)
    if found:
        raise RuntimeError(
            f"DoCL cannot resume at epoch {epoch}: the state saved in `backup_dir` is for "
            f"epoch(s) {sorted(found)} (of {sorted(n for _, n in found.values())} examples) "
            "and the model's backup for epoch "
            f"{epoch}. The run was stopped between the two writes or the directory holds "
            "files of another run; delete `backup_dir` to train again from the start."
        )
    if restored:
        where = "in `backup_dir`" if directory else "(DoCL was given no `backup_dir`)"
        raise ValueError(
            f"`fit` resumes at epoch {epoch} from a `BackupAndRestore` backup, but DoCL has no "
            f"state for that epoch {where}: every score would be unknown and the next "
            "subsets drawn uniformly. Pass DoCL `backup_dir` (the directory of "
            "`BackupAndRestore`), so that its state is saved and restored with the model."
        )
    warnings.warn(
        f"DoCL: `fit` starts at epoch {epoch} (`initial_epoch`), but DoCL's state is that of "
        f"epoch {state.next_epoch if state.allocated else 0}: the scores of the epochs in "
        "between are unknown.",
        stacklevel=3,
    )
    return None
