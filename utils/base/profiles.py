"""Run profiles: how much data, which image size and how many epochs. Defined here and nowhere else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class Profile:
    """Training and data settings shared by every experiment run under this profile."""

    name: str
    data: Literal["synthetic", "real"]
    image_size: int
    epochs: int  # cap; early stopping on validation loss usually ends sooner
    patience: int
    batch_size: int = 64
    min_epochs: int = 0  # early stopping may not stop a run before this epoch (the best epoch is still kept)
    n_synthetic: int = 600
    val_bn: Literal["moving", "precise"] = "moving"  # BatchNorm statistics that validation (and test) scoring uses
    lr_schedule: Literal["constant", "plateau", "cosine"] = "constant"
    train_faces: int = (
        0  # train on this many faces of the training split (a fixed sample, the same for every seed); 0: all
    )
    description: str = ""

    def to_dict(self) -> dict:
        """Plain dict for the results store."""
        return asdict(self)

    def training_key(self) -> dict:
        """The settings that change a run's outcome (part of every stored run's identity).

        Training rules added later count only when they differ from their default, so earlier runs keep their identity.
        """
        key = {k: getattr(self, k) for k in ("name", "image_size", "epochs", "patience", "batch_size", "min_epochs")}
        key.update({k: getattr(self, k) for k, default in RULE_DEFAULTS.items() if getattr(self, k) != default})
        return key


RULE_DEFAULTS = {"val_bn": "moving", "lr_schedule": "constant", "train_faces": 0}
"""Training rules and their defaults (the rule every stored run before them was trained under)."""


_LAPTOP = Profile(
    "laptop",
    "real",
    64,
    epochs=30,
    patience=4,
    batch_size=64,
    min_epochs=9,
    description="real UTKFace, 64 px, early stopping (patience 4, at least 9 epochs, cap 30): the course's "
    "tables; minutes to hours per run on a 2-core CPU, depending on the CPU (README, Performance)",
)


def _arm(name: str, description: str, **change) -> Profile:
    """An arm of the 64 px decomposition (notebook 02): the laptop rule with one thing changed."""
    return replace(_LAPTOP, name=name, description=description, **change)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        "synthetic",
        32,
        epochs=2,
        patience=2,
        batch_size=32,
        n_synthetic=600,
        description="synthetic faces, 32 px, 2 epochs: checks that everything runs (CI)",
    ),
    "laptop": _LAPTOP,
    "laptop-precise-bn": _arm(
        "laptop-precise-bn",
        "the laptop rule, validation and test scored with BatchNorm statistics re-measured "
        "on 50 training batches after every epoch (precise BatchNorm)",
        val_bn="precise",
    ),
    "laptop-long": _arm(
        "laptop-long", "the laptop rule with a longer budget: patience 10, cap 60", epochs=60, patience=10
    ),
    "laptop-plateau": _arm(
        "laptop-plateau",
        "the laptop rule, learning rate halved whenever validation loss has not improved for 2 epochs",
        lr_schedule="plateau",
    ),
    # Sized from runs timed on a 2-core Intel Xeon (AMX), a 128 px training beside (2026-12-02). The first sizing (3,000
    # faces, 10 epochs, BatchNorm's moving averages) stopped at chance: a few hundred steps (47 an epoch) leave
    # averages with momentum 0.99 partly at their initial values, and validation read them. With re-measured
    # statistics (val_bn="precise"):
    # 3,000 faces gave the article network 16.3 y after 10 epochs (16.9 y after 19), 6,000 faces 14.7 y and 0.884 after
    # 12 (OR-CNN: 9.9 y), against 15.0 y for always answering the training median. Per epoch of 6,000 faces:
    # 9-13 s in bfloat16, 26-29 s in float32 with oneDNN capped at AVX2 (a laptop without AVX-512), so 10 epochs
    # stay within ~5 min there.
    "class": Profile(
        "class",
        "real",
        32,
        epochs=10,
        patience=3,
        batch_size=64,
        min_epochs=6,
        val_bn="precise",
        train_faces=6000,
        description="real UTKFace, 32 px, 6,000 training faces, 6-10 epochs (patience 3), BatchNorm statistics "
        "re-measured for validation: one run in a lesson (1-5 min on a 2-core laptop CPU); scored on the whole "
        "test split. The prose around the tables quotes the committed laptop runs: these tables are this profile's own",
    ),
    "full": Profile(
        "full",
        "real",
        128,
        epochs=90,
        patience=10,
        batch_size=64,
        description="real UTKFace, 128 px, up to 90 epochs (the article's setting; patience 10 is ours), for a GPU",
    ),
}


def has_gpu() -> bool:
    """True when the Keras backend sees a GPU (TensorFlow or JAX)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve(name: str = "auto", real_data: bool = True, gpu: bool = False) -> Profile:
    """The named profile; 'auto' is full on a GPU and laptop on a CPU when the real data is there, else smoke.

    Reads nothing from the disk: ``datasets.resolve_profile`` says whether the real data is there.
    """
    if name != "auto":
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)} or 'auto'")
        return PROFILES[name]
    if not real_data:
        return PROFILES["smoke"]
    return PROFILES["full" if gpu else "laptop"]


def longer(prof: Profile) -> Profile:
    """``prof`` with a longer budget, as laptop-long is to laptop (patience x2.5, cap x2), under its own name."""
    patience, epochs = round(prof.patience * 2.5), prof.epochs * 2
    return replace(
        prof,
        name=f"{prof.name}-long",
        patience=patience,
        epochs=epochs,
        description=f"{prof.name} with patience {patience} and a cap of {epochs} epochs",
    )
