"""The command line's time grammar (`aiocea_trio.cli._times`), against a fixed "now"."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from aiocea_trio.cli import _times
from aiocea_trio.cli._app import cli
from aiocea_trio.cli._times import parse_time, to_epoch_ms

NOW = dt.datetime(2024, 3, 31, 13, 45, 30, 123_000, tzinfo=dt.UTC)
NOW_MS = to_epoch_ms(NOW)
MIDNIGHT_MS = to_epoch_ms(dt.datetime(2024, 3, 31, tzinfo=dt.UTC))
HOUR, DAY = 3_600_000, 86_400_000


def at(text: str) -> int:
    return parse_time(text, now=NOW)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW_MS),
        ("NOW", NOW_MS),
        ("  today ", MIDNIGHT_MS),
        ("yesterday", MIDNIGHT_MS - DAY),
        ("30 days ago", NOW_MS - 30 * DAY),
        ("2 hours ago", NOW_MS - 2 * HOUR),
        ("2h ago", NOW_MS - 2 * HOUR),
        ("2  HOURS   Ago", NOW_MS - 2 * HOUR),
        ("an hour ago", NOW_MS - HOUR),
        ("a day ago", NOW_MS - DAY),
        ("1 hr ago", NOW_MS - HOUR),
        ("15m ago", NOW_MS - 15 * 60_000),
        ("15 mins ago", NOW_MS - 15 * 60_000),
        ("90 s ago", NOW_MS - 90_000),
        ("1 second ago", NOW_MS - 1_000),
        ("250ms ago", NOW_MS - 250),
        ("0 days ago", NOW_MS),
        ("2 weeks ago", NOW_MS - 14 * DAY),
        ("2w ago", NOW_MS - 14 * DAY),
        # calendar months: the day is cut to the month's last
        ("1 month ago", to_epoch_ms(NOW.replace(month=2, day=29))),
        ("1mo ago", to_epoch_ms(NOW.replace(month=2, day=29))),
        ("3 months ago", to_epoch_ms(NOW.replace(year=2023, month=12))),
        ("13 months ago", to_epoch_ms(NOW.replace(year=2023, month=2, day=28))),
        ("a year ago", to_epoch_ms(NOW.replace(year=2023))),
        ("2y ago", to_epoch_ms(NOW.replace(year=2022))),
        # the forms accepted before: epoch ms and ISO 8601 (no offset means UTC)
        ("1704067200000", 1_704_067_200_000),
        ("2024-01-01", 1_704_067_200_000),
        ("2024-01-01T12:00", 1_704_067_200_000 + 12 * HOUR),
        ("2024-01-01T12:00:00Z", 1_704_067_200_000 + 12 * HOUR),
        ("2024-01-01T12:00:00.250+00:00", 1_704_067_200_000 + 12 * HOUR + 250),
        ("2024-01-01T14:00+02:00", 1_704_067_200_000 + 12 * HOUR),
        ("2024-01-01 12:00", 1_704_067_200_000 + 12 * HOUR),
    ],
)
def test_forms(text: str, expected: int) -> None:
    assert at(text) == expected, (iso(at(text)), iso(expected))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a time"),
        ("   ", "not a time"),
        ("tomorrow", "not a time"),
        ("next tuesday", "not a time"),
        ("2 hours", "not a time"),
        ("hours ago", "not a time"),
        ("-2 hours ago", "not a time"),
        ("1.5 hours ago", "not a time"),
        ("2 fortnights ago", "unknown unit 'fortnights'"),
        ("3 parsecs ago", "use ms, s, m, h, d, w, mo, y"),
        ("60000 years ago", "before 1970"),
        ("99999999999 days ago", "before 1970"),
        ("1969-12-31", "before 1970"),
        ("2024-13-01", "not a time"),
    ],
)
def test_bad_input_says_what_is_accepted(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        at(text)


def test_a_naive_now_is_utc_and_an_aware_one_any_zone() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_time("today", now=naive) == MIDNIGHT_MS
    tokyo = NOW.astimezone(dt.timezone(dt.timedelta(hours=9)))  # already April 1st there
    assert parse_time("today", now=tokyo) == MIDNIGHT_MS  # today is a UTC day
    assert parse_time("now", now=tokyo) == NOW_MS


def test_now_defaults_to_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_times, "utc_now", lambda: NOW)
    assert parse_time("1 day ago") == NOW_MS - DAY


_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": HOUR, "d": DAY, "w": 7 * DAY}
_NAMES = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days",
          "w": "weeks"}
_nows = st.datetimes(
    min_value=dt.datetime(2017, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=st.just(dt.UTC)
)


@given(now=_nows, count=st.integers(0, 2_000), unit=st.sampled_from(sorted(_UNIT_MS)))
def test_fixed_units_are_exact_offsets(now: dt.datetime, count: int, unit: str) -> None:
    expected = to_epoch_ms(now) - count * _UNIT_MS[unit]
    assert parse_time(f"{count}{unit} ago", now=now) == expected
    assert parse_time(f"{count} {_NAMES[unit]} ago", now=now) == expected
    assert parse_time(f"{count} {_NAMES[unit].upper()} AGO", now=now) == expected


@given(now=_nows, months=st.integers(0, 400))
def test_months_keep_the_time_of_day_and_never_pass_the_month(
    now: dt.datetime, months: int
) -> None:
    then = dt.datetime.fromtimestamp(parse_time(f"{months} months ago", now=now) / 1000, dt.UTC)
    assert (now.year * 12 + now.month) - (then.year * 12 + then.month) == months
    assert then.time() == now.replace(microsecond=now.microsecond // 1000 * 1000).time()
    assert then.day == now.day or then.day < now.day  # cut to the month's last day
    if months % 12 == 0:
        assert parse_time(f"{months // 12} years ago", now=now) == to_epoch_ms(then)


@given(now=_nows)
def test_today_and_yesterday_are_utc_midnights_around_now(now: dt.datetime) -> None:
    today, yesterday, this = (parse_time(w, now=now) for w in ("today", "yesterday", "now"))
    assert today % DAY == 0
    assert today <= this < today + DAY
    assert yesterday == today - DAY


@given(ms=st.integers(0, 4_102_444_800_000))
def test_epoch_ms_and_iso_round_trip(ms: int) -> None:
    assert at(str(ms)) == ms
    assert at(iso(ms)) == ms
    assert at(iso(ms).replace("+00:00", "Z")) == ms


# -- on the command line ---------------------------------------------------------------------


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """The CLI's "now": 2024-01-03T12:34Z."""
    now = dt.datetime(2024, 1, 3, 12, 34, tzinfo=dt.UTC)
    monkeypatch.setattr(_times, "utc_now", lambda: now)
    return now


def test_klines_take_relative_times(fixed_now: dt.datetime, tmp_path: Path) -> None:
    target = tmp_path / "btc.csv"
    result = CliRunner().invoke(
        cli, ["--sim", "klines", "BTCUSDT", "1h", "--start", "2 days ago", "--end", "today",
              "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    opens = [int(line.split(",")[0]) for line in target.read_text().splitlines()[1:]]
    # 2024-01-01T12:34 -> the first open at 13:00; today is 2024-01-03T00:00 (exclusive)
    assert opens[0] == to_epoch_ms(dt.datetime(2024, 1, 1, 13, tzinfo=dt.UTC))
    assert opens[-1] == to_epoch_ms(dt.datetime(2024, 1, 2, 23, tzinfo=dt.UTC))
    assert len(opens) == 35


def test_klines_yesterday_to_now(fixed_now: dt.datetime, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--sim", "klines", "BTCUSDT", "1h", "--start", "yesterday", "--end", "now",
              "--format", "json", "-o", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 0, result.output
    assert '"rows": 37' in result.output  # 2024-01-02T00:00 .. 2024-01-03T12:00


@pytest.mark.parametrize(
    ("args", "option", "words"),
    [
        (["--start", "a while ago"], "--start", "unknown unit 'while'"),
        (["--start", "soon"], "--start", "not a time: 'soon' (use epoch ms"),
        (["--start", "yesterday", "--end", "the end"], "--end", "not a time"),
        (["--start", "today", "--end", "yesterday"], "--start", "is not before --end"),
        (["--start", "now", "--end", "now"], "--start", "is not before --end"),
        (["--start", "20 years ago"], "--start", "between 2017-01-01 and 2100-01-01"),
    ],
)
def test_bad_times_name_the_option(
    fixed_now: dt.datetime, tmp_path: Path, args: list[str], option: str, words: str
) -> None:
    target = tmp_path / "x.csv"
    result = CliRunner().invoke(cli, ["--sim", "klines", "BTCUSDT", "1h", *args, "-o", str(target)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: Invalid value for {option}: "), result.output
    assert words in result.output
    assert result.output.count("\n") == 1
    assert not target.exists()
