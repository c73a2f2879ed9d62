"""Where the pretext stage trains: one `tf.distribute.Strategy` per process, built from `trainer.strategy`.

- auto: MirroredStrategy over all GPUs when more than one is visible, else the default (no-op) strategy.
- one_device: OneDeviceStrategy on the first GPU, or the CPU.
- mirrored: MirroredStrategy over all GPUs, or over all logical CPU devices when there is no GPU.
- multi_worker: MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG environment variable,
  and a missing or unreadable TF_CONFIG is an error (training alone on each node would silently give
  each node its own encoder).

`SSLRUN_LOGICAL_CPUS=N` splits the CPU into N logical devices before TensorFlow builds its devices,
so `mirrored` runs N replicas on a machine without GPUs (to test multi-replica code paths).

Under more than one replica every BatchNormalization layer of the task is switched to synchronized
(global-batch) statistics, so replicas compute what one device computes on the whole batch and their
moving averages stay identical.
"""

from __future__ import annotations

import functools
import json
import logging
import os

import keras
import tensorflow as tf

from sslrun.errors import SslrunError

log = logging.getLogger("sslrun")

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
LOGICAL_CPUS_ENV = "SSLRUN_LOGICAL_CPUS"


def configure_logical_cpus() -> int:
    """Apply SSLRUN_LOGICAL_CPUS (N logical CPU devices); return how many CPU devices there are."""
    wanted = os.environ.get(LOGICAL_CPUS_ENV, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise SslrunError(f"{LOGICAL_CPUS_ENV}={wanted!r}: use a whole number of logical CPU devices, e.g. 2")
        cpu = tf.config.list_physical_devices("CPU")[0]
        config = [tf.config.LogicalDeviceConfiguration() for _ in range(int(wanted))]
        try:
            tf.config.set_logical_device_configuration(cpu, config)
        except RuntimeError:  # devices already built (a second run in the same process): keep them
            log.warning("%s=%s ignored: TensorFlow had already built its devices", LOGICAL_CPUS_ENV, wanted)
    return len(tf.config.list_logical_devices("CPU"))


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    example = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    if not raw:
        raise SslrunError(
            "trainer.strategy=multi_worker needs the TF_CONFIG environment variable on every worker, e.g. "
            f"TF_CONFIG='{example}' (index 1 on the second host); on one machine use trainer.strategy=mirrored"
        )
    try:
        config = json.loads(raw)
        config["cluster"]["worker"], config["task"]["index"]  # noqa: B018  (the keys must exist)
    except (ValueError, KeyError, TypeError) as err:
        raise SslrunError(f"TF_CONFIG is not a cluster spec ({err!r}): expected JSON like {example}") from None
    return config


def check_multi_worker(strategy: str, cache: bool) -> None:
    """Workers must not share the pretext cache: on a shared file system one worker would hold the
    cache lock while the others wait on it, and the first would wait for them in its first all-reduce."""
    if strategy == "multi_worker" and cache:
        raise SslrunError(
            "trainer.strategy=multi_worker needs pretext.cache=false (workers would wait on each "
            "other's cache lock) and one hydra.run.dir per worker, e.g. hydra.run.dir=outputs/mw/w0"
        )


@functools.cache
def pretext_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for trainer.strategy=name, built once per process (MultiWorkerMirroredStrategy
    must be built before TensorFlow runs any op, and only once)."""
    if name not in STRATEGIES:
        raise SslrunError(f"trainer.strategy={name!r}: use one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        config = _tf_config()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as err:
            raise SslrunError(f"trainer.strategy=multi_worker: {err}; check TF_CONFIG") from err
        log.info(
            "multi-worker training: worker %d of %d, %d replicas",
            config["task"]["index"],
            len(config["cluster"]["worker"]),
            strategy.num_replicas_in_sync,
        )
        return strategy
    configure_logical_cpus()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "auto":
        strategy = tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    elif name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy((gpus or cpus)[0])
    else:
        devices = gpus or cpus
        if len(devices) == 1:
            log.warning(
                "trainer.strategy=mirrored over one device (%s): set %s=2 to mirror over logical CPUs",
                devices[0],
                LOGICAL_CPUS_ENV,
            )
        strategy = tf.distribute.MirroredStrategy(devices)
    log.info("pretext strategy %s: %s, %d replica(s)", name, type(strategy).__name__, strategy.num_replicas_in_sync)
    if strategy.num_replicas_in_sync > 1:  # TF logs each collective op it traces at INFO: dozens of lines
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    return strategy


def synchronize_batchnorm(model: keras.Model, strategy: tf.distribute.Strategy) -> int:
    """Under more than one replica, make every BatchNormalization use global-batch statistics.

    Returns the number of layers switched. The flag is read at call time, so this can follow build.
    """
    if strategy.num_replicas_in_sync == 1:
        return 0
    seen, stack = {}, [model]
    while stack:
        layer = stack.pop()
        if id(layer) not in seen:
            seen[id(layer)] = layer
            stack.extend(getattr(layer, "layers", []))
    norms = [layer for layer in seen.values() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.synchronized = True
    return len(norms)


def prepare_for_replicas(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Everything a compiled task needs to train under `strategy` (after build, inside its scope)."""
    synchronize_batchnorm(model, strategy)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        model.train_step = _vector_logs(model.train_step)
        model.test_step = _vector_logs(model.test_step)
        # Keras 3's fit first builds the model "symbolically" from one batch averaged over workers with
        # strategy.reduce, which MultiWorkerMirroredStrategy cannot do on nested batches (the two-view
        # tasks' (images, (images, labels))). The task is built already; with its optimizer built too,
        # that step has nothing to do, so it is skipped.
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model._maybe_symbolic_build = lambda *args, **kwargs: None


def _vector_logs(step):
    """Keras 3 reduces each step's logs across workers with strategy.reduce(MEAN, axis=0), which fails
    on the 0-d values every metric returns (tensorflow/tensorflow#72388): give it shape (1,); the
    reduction returns scalars again. Epoch logs read the metrics themselves, over all replicas."""

    def wrapped(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    return wrapped
