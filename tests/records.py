"""A minimal stored-run record for tests of the store, the pool and the device's unpacking."""

from utils.base.profiles import Profile
from utils.nets.models import ARTICLE

TINY = Profile("tiny", "synthetic", 32, epochs=1, patience=1, batch_size=32)


def record(seed: int, loss: float = 0.5) -> dict:
    """One synthetic run of the article's network in the tiny profile, as the store writes it."""
    return {
        "config": ARTICLE.to_dict(),
        "seed": seed,
        "profile": TINY.to_dict(),
        "data": {"kind": "synthetic", "fingerprint": "fp", "split_id": "split", "image_size": 32},
        "metrics": {"loss": loss},
        "history": {},
        "predictions": {},
    }
