"""Export formats: JSON objects, SRT and WebVTT cues."""

import json

import pytest

from ytingest.export import render

ROWS = [
    {
        "idx": 0,
        "start_s": 0.0,
        "end_s": 2.5,
        "text": "Hello there.",
        "speaker": None,
        "speaker_score": None,
        "avg_logprob": -0.2,
    },
    {
        "idx": 1,
        "start_s": 3661.25,
        "end_s": 3662.0,
        "text": "Later.",
        "speaker": "Ann",
        "speaker_score": 0.9,
        "avg_logprob": -0.3,
    },
]


def test_json_has_start_end_text_speaker() -> None:
    """JSON export is an array of objects with start, end, text and speaker."""
    out = json.loads(render(ROWS, "json"))
    assert [(o["start"], o["end"], o["text"], o["speaker"]) for o in out] == [
        (0.0, 2.5, "Hello there.", None),
        (3661.25, 3662.0, "Later.", "Ann"),
    ]


def test_srt_numbers_cues_with_comma_milliseconds() -> None:
    """SRT cues are numbered from 1 with HH:MM:SS,mmm times and speaker tags."""
    out = render(ROWS, "srt")
    assert out.startswith("1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n")
    assert "01:01:01,250 --> 01:01:02,000\n[Ann] Later.\n" in out


def test_vtt_has_header_and_dot_milliseconds() -> None:
    """WebVTT starts with its header and uses HH:MM:SS.mmm."""
    out = render(ROWS, "vtt")
    assert out.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n")


def test_unknown_format_is_refused() -> None:
    """An unknown format raises instead of writing something else."""
    with pytest.raises(ValueError, match="unknown format"):
        render(ROWS, "docx")


def test_json_rows_carry_the_video_id_and_upload_date() -> None:
    """Given the video's row, each JSON row also has its video_id and YYYY-MM-DD upload date; the
    other keys are unchanged, and SRT/VTT are the same as without it."""
    from datetime import date

    video = {"id": "ep01", "title": "One", "upload_date": date(2026, 3, 1)}
    out = json.loads(render(ROWS, "json", video=video))
    assert [(o["video_id"], o["upload_date"]) for o in out] == [("ep01", "2026-03-01")] * 2
    about = ("video_id", "upload_date", "language", "language_probability", "warning")
    assert [{k: v for k, v in o.items() if k not in about} for o in out] == json.loads(render(ROWS, "json"))
    undated = json.loads(render(ROWS, "json", video={"id": "ep02", "upload_date": None}))
    assert undated[0]["upload_date"] is None
    assert (undated[0]["language"], undated[0]["language_probability"], undated[0]["warning"]) == (
        None,
        None,
        None,
    )
    for fmt in ("srt", "vtt"):
        assert render(ROWS, fmt, video=video) == render(ROWS, fmt)


def test_json_rows_carry_the_language_its_probability_and_the_warning() -> None:
    """Given the video's row, each JSON row has its language, the probability (4 decimals) and the
    warning; SRT/VTT stay the same."""
    video = {
        "id": "ep01",
        "upload_date": None,
        "language": "de",
        "language_probability": 0.9312345,
        "warning": "speaker identification failed: no voices",
    }
    out = json.loads(render(ROWS, "json", video=video))
    assert [(o["language"], o["language_probability"], o["warning"]) for o in out] == [
        ("de", 0.9312, "speaker identification failed: no voices")
    ] * 2
    assert render(ROWS, "srt", video=video) == render(ROWS, "srt")
