"""Importing TensorFlow for the console scripts: before any other sslrun module imports it.

TensorFlow's C++ side writes its start-up notices (oneDNN on, no CUDA driver, which CPU
instructions it was built for) straight to file descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL says.
They would stand between a user and the one line that says what went wrong, so they are held
back while TensorFlow loads and finds its devices; any other line written meanwhile is passed on.

TensorFlow turns its oneDNN kernels on by itself only on x86 CPUs with AVX512_VNNI, AVX512_BF16,
AVX_VNNI or AMX; on an AVX2-only CPU they stay off, and the convolutions sslrun trains run faster
with them on (bench/CPU_RESULTS.md). So on x86 sslrun sets TF_ENABLE_ONEDNN_OPTS=1 when the user has not
set it, in the console scripts before TensorFlow loads; Hydra's launcher jobs inherit it.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_NOTICES = re.compile(
    r"All log messages before absl::InitializeLog|\] oneDNN custom operations are on|cudart_stub\.cc|"
    r"cuda_platform\.cc:\d+\] failed call to cuInit|cpu_feature_guard\.cc|"
    r"^To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc"
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
_SET_BY_SSLRUN = "SSLRUN_SET_ONEDNN"  # marks a TF_ENABLE_ONEDNN_OPTS that sslrun set, for the log
# the CPU flags on which TensorFlow turns oneDNN on by itself (tensorflow/core/util/util.cc, IsMKLEnabled)
TF_ONEDNN_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def configure_onednn() -> None:
    """TF_ENABLE_ONEDNN_OPTS=1 on x86 where the user left it unset; call before TensorFlow is imported."""
    if ONEDNN_ENV not in os.environ and platform.machine().lower() in ("x86_64", "amd64"):
        os.environ[ONEDNN_ENV] = "1"
        os.environ[_SET_BY_SSLRUN] = "1"


def onednn_setting() -> tuple[bool, str]:
    """(oneDNN kernels on?, why), as TensorFlow reads its environment."""
    value = os.environ.get(ONEDNN_ENV)
    if value is None:
        on = bool(set(TF_ONEDNN_FLAGS) & cpu_flags())
        return on, f"TensorFlow's default for this CPU ({ONEDNN_ENV} unset)"
    on = value.strip().lower() in ("1", "true")
    who = "sslrun's default on x86" if os.environ.get(_SET_BY_SSLRUN) == "1" else "set by you"
    return on, f"{ONEDNN_ENV}={value}, {who}"


@contextmanager
def startup_notices_held() -> Iterator[None]:
    """Send fd 2 to a temporary file; on exit, write back every line that is not a start-up notice."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines():
                if not STARTUP_NOTICES.search(line):
                    print(line, file=sys.stderr)


def import_tensorflow() -> None:
    """Import TensorFlow and build its devices with the start-up notices held back."""
    if "tensorflow" in sys.modules:
        return
    configure_onednn()
    with startup_notices_held():
        import tensorflow as tf

        tf.config.list_physical_devices()
