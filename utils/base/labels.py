"""UTKFace labels: parsing file names, converting ages between years and the [0, 1] scale, and reading an age
distribution from an ordinal head's P(age > a)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

AGE_SCALE = 116.0
"""Ages are divided by 116, the oldest age in UTKFace, to map them into [0, 1] (the article does not say which
mapping it used)."""
MIN_AGE, MAX_AGE = 1, 116
GENDERS = {0: "male", 1: "female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Other", -1: "unknown"}

# age_gender_race_timestamp.jpg.chip.jpg, tolerant of what the real archive contains:
# a missing race field, a timestamp of any length, a stray space or a missing dot before "jpg".
_NAME = re.compile(
    r"^(?P<age>\d+)_(?P<gender>\d+)_(?:(?P<race>\d)_)?(?P<stamp>\d{6,})\s*\.?jpg(?:\.chip\.jpg)?$",
    re.IGNORECASE,
)


_CANONICAL = re.compile(r"^\d+_[01]_[0-4]_\d{17}\.jpg\.chip\.jpg$")


def is_canonical(name: str) -> bool:
    """True for names that follow the documented pattern exactly (17-digit timestamp, race present)."""
    return bool(_CANONICAL.match(name))


@dataclass(frozen=True)
class Label:
    """Age in years, gender (0 male, 1 female) and race (-1 when the file name has none)."""

    age: int
    gender: int
    race: int


def parse_name(name: str) -> tuple[Label | None, str | None]:
    """Parse a UTKFace file name into a Label, or return (None, reason) when its labels are ambiguous."""
    m = _NAME.match(name.strip())
    if m is None:
        return None, "name does not follow age_gender_race_timestamp"
    age, gender = int(m["age"]), int(m["gender"])
    race = int(m["race"]) if m["race"] is not None else -1
    if not MIN_AGE <= age <= MAX_AGE:
        return None, f"age outside {MIN_AGE}-{MAX_AGE}"
    if gender not in GENDERS:
        return None, "gender is not 0 or 1"
    if race not in RACES:
        return None, "race is not 0-4"
    return Label(age, gender, race), None


def years_to_unit(years: np.ndarray | float) -> np.ndarray | float:
    """Scale ages in years to the article's [0, 1] range (divide by 116)."""
    return np.asarray(years, dtype=np.float32) / AGE_SCALE


def unit_to_years(unit: np.ndarray | float) -> np.ndarray | float:
    """Convert normalised ages (or normalised errors) back to years."""
    return np.asarray(unit, dtype=np.float64) * AGE_SCALE


BAND_EDGES = (3, 10, 20, 30, 40, 50, 60, 70)
"""Lower edges of the age bands after the first: the course's one set of age bands (the split is stratified by them,
and every table and plot by age band uses them). Changing them changes the split."""
BAND_LABELS = ("0–2", "3–9", "10–19", "20–29", "30–39", "40–49", "50–59", "60–69", "70+")
BANDS = tuple(zip((0, *BAND_EDGES), (*(e - 1 for e in BAND_EDGES), MAX_AGE)))
"""The same bands as (first, last) years, both included: (0, 2), (3, 9), ..., (70, 116)."""


def age_band(years: np.ndarray) -> np.ndarray:
    """The index of each age's band in ``BANDS`` (0-2, 3-9, 10-19, ..., 70+), as the split stratifies them."""
    return np.searchsorted(np.asarray(BAND_EDGES), np.asarray(years), side="right")


INTERVAL = 0.8
"""The central probability of the age interval read from an ordinal head's P(age > a) (``age_interval``)."""


def age_distribution(above: np.ndarray) -> np.ndarray:
    """P(rank = k) for k = 0..K-1 from P(rank > k), k = 0..K-2, made non-increasing first (OR-CNN's need not be)."""
    s = np.minimum.accumulate(np.clip(np.asarray(above, np.float64), 0.0, 1.0))
    return -np.diff(np.concatenate([[1.0], s, [0.0]]))


def age_interval(above: np.ndarray, coverage: float | None = None, min_age: int = 1) -> tuple[float, float, float]:
    """The central ``coverage`` (default ``INTERVAL``) interval of the age distribution in years, and the probability
    the model itself puts inside it (at least ``coverage``, more when ages are whole years: compare coverage with
    it)."""
    coverage = INTERVAL if coverage is None else coverage
    dist = age_distribution(above)
    cdf = np.cumsum(dist)
    lo = int(np.searchsorted(cdf, (1 - coverage) / 2))
    hi = min(int(np.searchsorted(cdf, 1 - (1 - coverage) / 2)), len(cdf) - 1)
    return float(min_age + lo), float(min_age + hi), float(dist[lo : hi + 1].sum())
