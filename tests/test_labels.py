import numpy as np
import pytest

from utils.base.labels import age_band, parse_name, unit_to_years, years_to_unit


@pytest.mark.parametrize(
    "name, expected",
    [
        ("41_0_3_20170119171541497.jpg.chip.jpg", (41, 0, 3)),
        ("14_0_0_2017011022340900.jpg.chip.jpg", (14, 0, 0)),  # 16-digit timestamp
        ("28_1_2_201701161846515488.jpg.chip.jpg", (28, 1, 2)),  # 18-digit timestamp
        ("61_1_20170109150557335.jpg.chip.jpg", (61, 1, -1)),  # no race field
        ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0)),  # missing dot
        ("24_0_1_20170116220224657 .jpg.chip.jpg", (24, 0, 1)),  # stray space
        ("30_1_4_20170117195838909.jpg", (30, 1, 4)),  # without .chip.jpg
    ],
)
def test_parse_regular_and_irregular_names(name, expected):
    label, why = parse_name(name)
    assert why is None
    assert (label.age, label.gender, label.race) == expected


@pytest.mark.parametrize(
    "name, reason",
    [
        ("face.jpg", "does not follow"),
        ("0_0_0_20170119171541497.jpg.chip.jpg", "age outside"),
        ("117_0_0_20170119171541497.jpg.chip.jpg", "age outside"),
        ("30_2_0_20170119171541497.jpg.chip.jpg", "gender"),
        ("30_1_7_20170119171541497.jpg.chip.jpg", "race"),
    ],
)
def test_ambiguous_names_are_rejected_with_a_reason(name, reason):
    label, why = parse_name(name)
    assert label is None and reason in why


def test_age_scaling_round_trip_and_bands():
    years = np.array([1, 29, 116])
    assert np.allclose(unit_to_years(years_to_unit(years)), years)
    assert years_to_unit(116) == pytest.approx(1.0)
    assert list(age_band(np.array([0, 2, 3, 9, 10, 69, 70, 116]))) == [0, 0, 1, 1, 2, 7, 8, 8]
