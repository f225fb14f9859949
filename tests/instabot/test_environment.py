"""The environment reader: django-environ's Env, with blanks as unset, values as written, strict parsing."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from instabot.environment import InstabotEnv


def reader(**variables: str) -> InstabotEnv:
    env = InstabotEnv()
    env.ENVIRON = variables
    return env


def test_a_blank_variable_gets_its_default_and_a_required_one_is_named() -> None:
    env = reader(BLANK="  ", EMPTY="")
    assert env.int("BLANK", default=200) == 200
    assert env.str("EMPTY", default="fallback") == "fallback"
    assert env.list("MISSING", default=["localhost"]) == ["localhost"]
    with pytest.raises(ImproperlyConfigured, match=r"^Set the EMPTY environment variable\.$"):
        env.str("EMPTY")


@pytest.mark.parametrize(("raw", "expected"), [("true", True), (" YES ", True), ("on", True), ("1", True)])
def test_booleans_read_the_usual_words_for_true(raw: str, expected: bool) -> None:
    assert reader(FLAG=raw).bool("FLAG", default=False) is expected


@pytest.mark.parametrize("raw", ["false", "No", "off", "0"])
def test_booleans_read_the_usual_words_for_false(raw: str) -> None:
    assert reader(FLAG=raw).bool("FLAG", default=True) is False


@pytest.mark.parametrize(
    ("method", "raw", "message"),
    [
        ("bool", "maybe", "FLAG must be true or false, not 'maybe'."),
        ("bool", "2", "FLAG must be true or false, not '2'."),
        ("int", "lots", "FLAG must be an integer, not 'lots'."),
        ("int", "2.5", "FLAG must be an integer, not '2.5'."),
        # django-environ alone drops the letters and reads 2.5.
        ("float", "2.5s", "FLAG must be a number, not '2.5s'."),
        ("float", "1,5", "FLAG must be a number, not '1,5'."),
    ],
)
def test_a_value_that_does_not_parse_names_the_variable(method: str, raw: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        getattr(reader(FLAG=raw), method)("FLAG", default=0)
    assert str(raised.value) == message


def test_numbers_and_lists_parse() -> None:
    env = reader(COUNT=" 12 ", SECONDS="0.25", HOSTS=" a.example, b.example ,, ")
    assert env.int("COUNT", default=1) == 12
    assert env.float("SECONDS", default=1.0) == 0.25
    assert env.list("HOSTS", default=[]) == ["a.example", "b.example"]


def test_a_value_starting_with_a_dollar_is_taken_as_written() -> None:
    # django-environ alone would read "$OTHER" as the value of OTHER: a secret may start with "$".
    env = reader(SECRET="$OTHER-x9", OTHER="not-this")
    assert env.str("SECRET", default="") == "$OTHER-x9"
