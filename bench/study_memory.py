"""RSS after each downstream evaluation of a study (bench/RESULTS.md, seed 004 peak RSS), and what frees it.

usage: python bench/study_memory.py {plain|clear|gc|trim|count} <sslrun overrides...>
  plain  nothing between evaluations      clear  keras.backend.clear_session() (dtype policy kept)
  gc     gc.collect()                     trim   gc.collect() and glibc malloc_trim(0)
  count  gc.collect(), then the live Keras models and layers, tf.data datasets and TensorFlow functions
Prints one "LEAK <variant> <eval> repeat <r>: <RSS> MB" line per evaluation. Measured 2026-12-02 with
  sslrun experiment=seed004_mnist_rotation_150 dataset.path=../shared/data/mnist stage=pretext trainer.epochs=1 \
      tensorboard=false hydra.run.dir=/tmp/exp/p4
  python bench/study_memory.py <variant> experiment=seed004_mnist_rotation_150 dataset.path=../shared/data/mnist \
      stage=downstream pretext.from=/tmp/exp/p4 downstream.repeats=10 downstream.frozen_epochs=2 \
      downstream.unfrozen_epochs=2 downstream.scratch_epochs=2 trainer.progress=false tensorboard=false \
      hydra.run.dir=/tmp/exp/d4-<variant>
(and `plain` under MALLOC_ARENA_MAX=2).
"""

import ctypes
import gc
import sys
import time

import keras
import tensorflow as tf

import sslrun.downstream.study as study
from sslrun.cli import main

VARIANTS = ("plain", "clear", "gc", "trim", "count")
record_result = study._record  # patched below: the real CLI runs, with a hook after each evaluation
t0 = time.time()


def rss_mb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return -1


def live_objects() -> str:
    objs = gc.get_objects()
    models = sum(isinstance(o, keras.Model) for o in objs)
    layers = sum(isinstance(o, keras.Layer) for o in objs)
    datasets = sum(isinstance(o, tf.data.Dataset) for o in objs)
    funcs = sum(type(o).__name__ in ("Function", "ConcreteFunction", "AtomicFunction") for o in objs)
    return f"models {models} layers {layers} datasets {datasets} functions {funcs} objects {len(objs)}"


def hooked(variant: str):
    def record(out, name, budget, repeat, splits, result) -> None:
        record_result(out, name, budget, repeat, splits, result)
        if variant == "clear":
            policy = keras.config.dtype_policy()  # clear_session resets it
            keras.backend.clear_session()
            keras.config.set_dtype_policy(policy)
        elif variant in ("gc", "trim", "count"):
            gc.collect()
        if variant == "trim":
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        if variant == "count":
            print(f"COUNT {live_objects()}", flush=True)
        print(f"LEAK {variant} {name} repeat {repeat}: {rss_mb()} MB at {time.time() - t0:.0f}s", flush=True)

    return record


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python bench/study_memory.py {{{'|'.join(VARIANTS)}}} <sslrun overrides...>")
    study._record = hooked(sys.argv.pop(1))
    sys.argv[0] = "sslrun"
    main()
