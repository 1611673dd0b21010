"""Command lines without TensorFlow's start-up noise: its C++ lines (oneDNN, CUDA drivers, CPU flags) are printed
before its logging reads TF_CPP_MIN_LOG_LEVEL, so a command line imports it with stderr captured and writes back
only what is not that noise. Importing the course as a library changes nothing."""

from __future__ import annotations

import os
import re
import sys
import tempfile

TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\] .*"
    r"|.*oneDNN custom operations are on.*|.*TF_ENABLE_ONEDNN_OPTS=0.*"
    r"|.*This TensorFlow binary is optimized to use available CPU instructions.*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)$"
)
"""TensorFlow's start-up lines below FATAL (absl's format ``I0000 00:00:17961.. 6298 port.cc:153] ...``, and the
oneDNN and CPU-flag notes), and absl's note that it writes them before it is initialised."""


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (on its backend) and look for a GPU with stderr captured; write back what is not noise."""
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA is probed here, still inside the capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line for line in captured.read().decode("utf-8", "replace").splitlines() if not TF_NOISE.match(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
