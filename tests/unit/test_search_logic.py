"""The search request's own logic: dates, phrases, highlight terms, rank fusion, grouping."""

from __future__ import annotations

from datetime import date

import pytest

from ytingest.errors import ConfigError
from ytingest.items import SearchHit
from ytingest.search import (
    RRF_K,
    QueryParts,
    SearchQuery,
    fuse,
    group_by_video,
    parse_day,
    phrase_pattern,
    terms,
)


def test_parse_day_takes_iso_and_relative_forms() -> None:
    today = date(2026, 11, 29)
    assert parse_day("2026-01-31") == date(2026, 1, 31)
    assert parse_day("7d", today=today) == date(2026, 11, 22)
    assert parse_day("2w", today=today) == date(2026, 11, 15)
    assert parse_day(" 1Y ", today=today) == date(2025, 11, 29)
    for bad in ("yesterday", "2026-13-01", "7x", "", "99999999d"):
        with pytest.raises(ConfigError, match="not a date"):
            parse_day(bad)


def test_phrases_and_highlight_terms() -> None:
    q = 'the "penny farthing" wheel 0.8'
    assert QueryParts.of(q).phrases == ("penny farthing",)
    assert terms(q) == ["penny farthing", "wheel", "0.8"]  # stop words are not highlighted
    assert terms('Wheel wheel "a"') == ["wheel"]  # one per word, case aside; 1-letter words dropped
    assert terms('cats or dogs -bread -"rye loaf" how to bake') == ["cats", "dogs", "bake"]


def test_query_validation() -> None:
    assert SearchQuery('say "hello there"').phrases == ("hello there",)
    with pytest.raises(ConfigError, match="empty"):
        SearchQuery("  ")
    with pytest.raises(ConfigError, match="empty"):
        SearchQuery("-bread or")
    with pytest.raises(ConfigError, match="NUL"):
        SearchQuery("a\x00b")
    with pytest.raises(ConfigError, match="NUL"):
        SearchQuery("ok", speaker="x\x00")
    with pytest.raises(ConfigError, match="finite"):
        SearchQuery("ok", min_score=float("nan"))
    with pytest.raises(ConfigError, match="mode"):
        SearchQuery("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="limit"):
        SearchQuery("x", limit=0)
    with pytest.raises(ConfigError, match="after"):
        SearchQuery("x", since=date(2026, 2, 1), until=date(2026, 1, 1))
    assert SearchQuery("x", limit=40).candidates == 200


def test_fusion_rewards_agreement_and_scales_to_one() -> None:
    a, b, c = ("v", 0), ("v", 1), ("v", 2)
    fused = fuse([[a, b, c], [b, a]], limit=10)
    assert [key for key, _ in fused] == [a, b, c]  # a and b tie: the first list breaks it
    assert fused[0][1] == pytest.approx((1 / (RRF_K + 1) + 1 / (RRF_K + 2)) / (2 / (RRF_K + 1)))
    top = fuse([[b, a], [b]], limit=1)
    assert top == [(b, pytest.approx(1.0))]
    only_one_list = fuse([[c], []], limit=5)
    assert only_one_list[0][0] == c and only_one_list[0][1] == pytest.approx(0.5)


def hit(video: str, idx: int, score: float) -> SearchHit:
    return SearchHit(video, video.upper(), "u", 0.0, 1.0, "t", None, score, idx=idx)


def test_grouping_keeps_rank_order_within_and_across_videos() -> None:
    groups = group_by_video([hit("b", 3, 0.9), hit("a", 1, 0.8), hit("b", 0, 0.7)])
    assert [g.video_id for g in groups] == ["b", "a"]
    assert [h.idx for h in groups[0].hits] == [3, 0] and groups[0].best.score == 0.9
    assert groups[0].to_dict()["title"] == "B"


def test_keyword_rewrites_match_any_word_and_keep_exclusions() -> None:
    q = 'bread "stretch and fold" -rye OR oven -"sour dough"'
    parts = QueryParts.of(q)
    assert parts.any_words() == '"stretch and fold" or bread or oven'
    assert " ".join(parts.excluded) == '-rye -"sour dough"'
    assert QueryParts.of("plain words").excluded == ()
    assert parts.phrases == ("stretch and fold",)  # a -"phrase" is an exclusion, never required
    assert QueryParts.of(q).meaning() == "stretch and fold bread oven"


def test_phrase_patterns_are_whole_words_in_order() -> None:
    assert phrase_pattern("penny farthing") == r"\mpenny[\s-]+farthing\M"
    assert phrase_pattern("0.8 (beta)") == r"\m0\.8[\s-]+\(beta\)\M"
