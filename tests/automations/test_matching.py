import pytest

from automations.matching import keywords_match


@pytest.mark.parametrize(
    ("keywords", "text", "expected"),
    [
        ([], "anything", True),
        ([], "", True),
        (["price"], "PRICE please", True),
        (["price"], "what's the price?", True),
        (["price"], "prices?", False),
        (["price"], "pricey", False),
        (["price"], "no match here", False),
        (["price", "cost"], "how much does it COST", True),
        (["free shipping"], "is there Free Shipping?", True),
        (["free shipping"], "free  shipping", False),
        (["c++"], "do you teach c++?", True),
        (["äöå"], "Préis? ÄÖÅ now", True),
        (["info"], "information", False),
        (["info"], "info_box", False),
        (["link"], "link.", True),
    ],
)
def test_keywords_match_case_insensitively_as_whole_words(keywords: list[str], text: str, expected: bool) -> None:
    assert keywords_match(keywords=keywords, text=text) is expected
