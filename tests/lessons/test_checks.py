"""The one range check (helpers/checks.py): every count a learner types is refused the same way, naming a fix."""

import pytest

from helpers.checks import check_count, check_number, check_size


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("batch_size", 0), {}, "batch_size must be an integer >= 1, got batch_size=0; e.g. batch_size=1"),
        (("batch_size", True), {}, "batch_size must be an integer >= 1, got batch_size=True; e.g. batch_size=1"),
        (("rows", 2.5), {}, "rows must be an integer >= 1, got rows=2.5; e.g. rows=3"),
        (("seed", -1), {"minimum": 0}, "seed must be an integer >= 0, got seed=-1; e.g. seed=0"),
        (("steps", "ten"), {}, "steps must be an integer >= 1, got steps='ten'; e.g. steps=1"),
        (("jobs", 9), {"maximum": 4}, "jobs must be an integer from 1 to 4, got jobs=9; e.g. jobs=4"),
        (("n", 0), {"about": "the number of images"}, "n must be an integer >= 1 (the number of images), got n=0;"),
    ],
)
def test_a_bad_count_names_the_parameter_the_value_and_one_that_works(args, kwargs, message):
    with pytest.raises(ValueError) as raised:
        check_count(*args, **kwargs)
    assert str(raised.value).startswith(message)


def test_a_good_count_comes_back_as_it_was():
    assert check_count("seed", 0, minimum=0) == 0 and check_count("jobs", 4, maximum=4) == 4


def test_numbers_and_sizes():
    assert check_number("guidance_scale", 7.5, minimum=0) == 7.5 and check_number("gain", 3) == 3
    for bad in (-1, float("nan"), "7", None):
        with pytest.raises(ValueError, match=r"guidance_scale must be a number >= 0, got guidance_scale="):
            check_number("guidance_scale", bad, minimum=0)
    assert check_size("height", 512) == 512
    with pytest.raises(ValueError, match=r"width must be a multiple of 8 .*got width=70; use 64 or 72"):
        check_size("width", 70)
    with pytest.raises(ValueError, match=r"height must be an integer >= 8, got height=0"):
        check_size("height", 0)
