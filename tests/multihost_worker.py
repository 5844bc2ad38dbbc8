"""One worker of tests/multihost.py: set up JAX's runtime, call the target, write its result.

python multihost_worker.py module:function --args JSON --num-processes N
    [--process-id I --port P] --out PATH
"""

import argparse
import importlib
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--args", default="{}")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()

    import jax

    # The CPU backend has no cross-process collectives without gloo.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    if options.num_processes > 1:
        keras.distribution.initialize(
            job_addresses=f"127.0.0.1:{options.port}",
            num_processes=options.num_processes,
            process_id=options.process_id,
        )
    # Each process feeds its own part of every global batch (`kc.split_batches`, and the DoCL
    # and EfficientTrain stages), so Keras must not split the data again.
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(), auto_shard_dataset=False
        )
    )
    module, name = options.target.split(":")
    result = getattr(importlib.import_module(module), name)(**json.loads(options.args))
    with open(options.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
