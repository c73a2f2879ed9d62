"""Which dtype policy trains (`trainer.precision`), and Keras' process-wide policy set for a scope.

`auto` (the default) picks mixed_bfloat16 only where the hardware computes bfloat16 natively: a GPU of
compute capability 8.0 or more, or a CPU with the avx512_bf16 or amx_bf16 flag and TensorFlow's oneDNN
kernels on. Elsewhere bfloat16 is emulated, several times slower than float32 (bench/CPU_RESULTS.md), so
auto trains in float32. auto never chooses mixed_float16: it has not been measured faster on any
machine sslrun is tested on (none has a GPU); set it by hand on a GPU with fp16 tensor cores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import keras

from sslrun.tfboot import cpu_flags, onednn_setting

log = logging.getLogger("sslrun")

NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def _gpu_capability() -> tuple[int, int] | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0))


def native_bf16_flags(flags: set[str]) -> list[str]:
    return sorted(set(NATIVE_BF16_CPU_FLAGS) & flags)


def choose_precision(requested: str, gpu: tuple[int, int] | None, flags: set[str], onednn: bool) -> tuple[str, str]:
    """(policy, why) for trainer.precision=requested on this hardware."""
    native = native_bf16_flags(flags)
    if requested != "auto":
        return requested, "set by trainer.precision"
    if gpu is not None:
        if gpu >= (8, 0):
            return "mixed_bfloat16", f"GPU of compute capability {gpu[0]}.{gpu[1]} computes bfloat16 natively"
        return "float32", (
            f"GPU of compute capability {gpu[0]}.{gpu[1]} has no native bfloat16 (8.0+); "
            "trainer.precision=mixed_float16 may be faster on its tensor cores"
        )
    if native and onednn:
        return "mixed_bfloat16", f"the CPU computes bfloat16 natively ({', '.join(native)}) through oneDNN"
    if native:
        return "float32", f"the CPU has {', '.join(native)} but TensorFlow's oneDNN kernels are off"
    return "float32", "the CPU has no native bfloat16 (no amx_bf16 or avx512_bf16 flag): it would be emulated"


def resolve_precision(requested: str) -> tuple[str, str]:
    """choose_precision on this machine, with a warning where an explicit bfloat16 will be emulated."""
    gpu, flags, onednn = _gpu_capability(), cpu_flags(), onednn_setting()[0]
    policy, why = choose_precision(requested, gpu, flags, onednn)
    if requested == "mixed_bfloat16" and gpu is None and not (onednn and native_bf16_flags(flags)):
        log.warning(
            "trainer.precision=mixed_bfloat16 on a CPU without native bfloat16 (or with oneDNN off): "
            "it is emulated and several times slower than float32; trainer.precision=auto chooses for you"
        )
    return policy, why


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Models built inside use `name` (float32 | mixed_float16 | mixed_bfloat16); the caller's policy after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
