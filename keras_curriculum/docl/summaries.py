"""DoCL's TensorBoard summaries: the fraction of the data trained and a histogram of the scores."""

import numpy as np


class ScoreSummaries:
    """Writes one summary per epoch to `log_dir` (needs TensorFlow and TensorBoard)."""

    def __init__(self, log_dir):
        import tensorflow as tf

        try:
            import tensorboard  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "DoCL(log_dir=...) writes TensorBoard summaries: `pip install tensorboard`."
            ) from error
        self.writer = tf.summary.create_file_writer(log_dir)

    def write(self, epoch, fraction, scores):
        import tensorflow as tf

        scores = scores[~np.isnan(scores)]
        with self.writer.as_default(step=epoch):
            tf.summary.scalar("docl/fraction", fraction)
            if len(scores):
                tf.summary.histogram("docl/score", scores)
        self.writer.flush()
