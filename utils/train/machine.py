"""The machine a run trains on: its backend, CPU features, the precision 'auto' picks, versions, device name."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import keras

from ..base.profiles import has_gpu

BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    import tensorflow as tf
else:  # e.g. KERAS_BACKEND=jax on a GPU machine that has no TensorFlow
    tf = None


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


PRECISION_ENV = "UTKFACE_PRECISION"
"""Set to a dtype policy (float32, mixed_bfloat16) to make 'auto' pick it: how the suite tests the other CPU's path."""


def resolve_precision(mode: str = "auto") -> str:
    """The dtype policy 'auto' means here: $UTKFACE_PRECISION if set, else mixed_float16 on a GPU, mixed_bfloat16 on
    bf16 CPUs, float32 otherwise."""
    if mode == "auto":
        mode = os.environ.get(PRECISION_ENV, "auto")
    if mode != "auto":
        return mode
    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def set_precision(mode: str = "auto") -> str:
    """Set Keras' global dtype policy for the rest of the session (a notebook's setup); runs use ``run_settings``."""
    mode = resolve_precision(mode)
    keras.mixed_precision.set_dtype_policy(mode)
    return mode


def versions() -> dict[str, str]:
    """The backend, its library's version, Keras' and Python's (every record keeps them)."""
    if tf is not None:
        lib = {"tensorflow": tf.__version__}
    else:
        import importlib

        lib = {BACKEND: getattr(importlib.import_module(BACKEND), "__version__", "?")}
    return {"backend": BACKEND, **lib, "keras": keras.__version__, "python": platform.python_version()}


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (e.g. 'AMD EPYC'), or the machine type when it is not known."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name() -> str:
    """What trains: the GPU's name, or the CPU's model, core count and whether it has bfloat16 instructions."""
    if has_gpu():
        if tf is None:
            import jax

            return f"GPU {jax.devices()[0].device_kind}"
        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU {details.get('device_name', gpus[0].name)}"
    return f"CPU {cpu_model()} x{os.cpu_count()}" + (" bf16" if cpu_has_bf16() else "")
