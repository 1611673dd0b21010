"""Early stopping replayed on a stored run's validation curve: where another patience (and cap) would have stopped it
and which epoch it would have kept (the solutions of 02 and 04-06). ``stopped_at`` is the rule of
``train.callbacks.WarmEarlyStopping`` written on a list; a test holds the two equal."""

from __future__ import annotations

from ..base.profiles import PROFILES
from ..train.runs import Run, history_key


def stopped_at(val_loss: list[float], patience: int, min_epochs: int = 0, cap: int | None = None) -> tuple[int, int]:
    """(last epoch, kept epoch), 1-based, that early stopping with this patience would have chosen on this curve."""
    curve, best, wait = list(val_loss)[: cap or None], 0, 0
    for epoch in range(1, len(curve)):
        best, wait = (epoch, 0) if curve[epoch] < curve[best] else (best, wait + 1)
        if wait >= patience and epoch + 1 >= min_epochs:
            return epoch + 1, best + 1
    return len(curve), best + 1


def replay(run: Run, patience: int, cap: int | None = None) -> dict:
    """Early stopping replayed on a stored run's validation curve with another patience (and cap): where it would stop,
    the epoch it would keep, and that epoch's validation loss and age MAE (solutions of 02 and 04)."""
    mins = run.profile.get("min_epochs")  # older records lack it: their profile's, by name
    if mins is None:
        mins = PROFILES[run.profile["name"]].min_epochs
    stop, kept = stopped_at(run.history["val_loss"], patience, mins, cap)
    key = history_key(run, "mae_years")  # None for a gender-only network
    mae = run.history[f"val_{key}"][kept - 1] if key else float("nan")
    return {
        "variant": run.variant,
        "seed": run.seed,
        "patience": patience,
        "stopped at": stop,
        "kept epoch": kept,
        "val loss there": round(run.history["val_loss"][kept - 1], 4),
        "val age MAE there (y)": round(mae, 2),
    }
