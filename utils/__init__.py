"""Helpers for the UTKFace age and gender course: data, models, training, results and plots."""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the notebooks

__version__ = "0.1.0"
