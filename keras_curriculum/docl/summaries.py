"""DoCL's own TensorBoard summaries (`DoCL(log_dir=...)`): the fraction and the scores."""

import numpy as np


class ScoreSummaries:
    """Writes `docl/fraction` and a histogram `docl/score` of the scored examples per epoch."""

    def __init__(self, log_dir):
        import tensorflow as tf

        try:
            import tensorboard  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "DoCL(log_dir=...) writes TensorBoard summaries: `pip install tensorboard`."
            ) from error
        self._writer = tf.summary.create_file_writer(log_dir)

    def write(self, epoch, fraction, scores):
        import tensorflow as tf

        scored = ~np.isnan(scores)
        with self._writer.as_default(step=epoch):
            tf.summary.scalar("docl/fraction", fraction)
            if scored.any():
                tf.summary.histogram("docl/score", scores[scored])
        self._writer.flush()
