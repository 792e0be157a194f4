"""The times the command line accepts (``--start``, ``--end``): absolute or relative, all UTC.

The grammar (case-insensitive; spaces around and between words do not matter)::

    time     := epoch-ms | iso | keyword | relative
    epoch-ms := DIGITS                        milliseconds since 1970-01-01T00:00Z
    iso      := an ISO 8601 date or date-time 2024-01-31, 2024-01-31T12:00, ...Z, ...+02:00
                                              (no offset means UTC)
    keyword  := "now"                         this instant
              | "today"                       00:00 UTC of the current day
              | "yesterday"                   00:00 UTC of the day before
    relative := COUNT UNIT "ago"              COUNT units before now, e.g. "30 days ago",
                                              "2h ago", "an hour ago"
    COUNT    := DIGITS | "a" | "an"           a whole number ("a"/"an" is 1)
    UNIT     := ms | millisecond[s]
              | s | sec[s] | second[s]
              | m | min[s] | minute[s]        ("m" is minutes, as in --every)
              | h | hr[s] | hour[s]
              | d | day[s]
              | w | week[s]
              | mo | month[s]                 calendar months: the same day and time of day,
              | y | year[s]                   the day cut to the month's last (Mar 31 - 1 month
                                              = Feb 28/29); years likewise

"Now" is read once per command, from `utc_now` (tests pass their own ``now``), so that
``--start "1 day ago" --end now`` is exactly one day. Times are checked for Binance's range
(2017..2100) by the command, not here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Final

__all__ = ["GRAMMAR_HINT", "parse_time", "to_epoch_ms", "utc_now"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS: Final = dt.timedelta(milliseconds=1)

#: What an error message suggests, for every option that takes a time.
GRAMMAR_HINT: Final = (
    "use epoch ms, an ISO date or time (2024-01-31, 2024-01-31T12:00Z), now, today, "
    "yesterday, or 'N units ago' (30 days ago, 2 hours ago, 15m ago)"
)

_UNITS: Final[dict[str, str]] = {
    **dict.fromkeys(("ms", "millisecond", "milliseconds"), "milliseconds"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "week", "weeks"), "weeks"),
    **dict.fromkeys(("mo", "month", "months"), "months"),
    **dict.fromkeys(("y", "year", "years"), "years"),
}
_RELATIVE: Final = re.compile(r"(?P<count>\d+|an?)\s*(?P<unit>[a-z]+)\s+ago")


def utc_now() -> dt.datetime:
    """This machine's clock, in UTC: what ``now`` means on the command line."""
    return dt.datetime.now(dt.UTC)


def to_epoch_ms(when: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime (naive ones are UTC), exactly (no float)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // _MS


def parse_time(text: str, *, now: dt.datetime | None = None) -> int:
    """Epoch milliseconds from one of the grammar's forms (see the module's docstring).

    Args:
        text: what the user typed.
        now: the instant relative forms count from (an aware datetime, or naive UTC);
            `utc_now()` when omitted.

    Raises:
        ValueError: ``text`` is none of the forms, or names a time before 1970.
    """
    value = " ".join(text.strip().lower().split())
    if not value:
        raise ValueError(f"not a time: {text!r} ({GRAMMAR_HINT})")
    if value.isdigit():
        return int(value)
    at = now if now is not None else utc_now()
    at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    at = at.astimezone(dt.UTC)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "now":
        when = at
    elif value == "today":
        when = midnight
    elif value == "yesterday":
        when = midnight - dt.timedelta(days=1)
    elif (match := _RELATIVE.fullmatch(value)) is not None:
        when = _ago(at, match["count"], match["unit"], text)
    else:
        when = _iso(text)
    ms = to_epoch_ms(when)
    if ms < 0:
        raise ValueError(f"{text!r} is before 1970")
    return ms


def _ago(now: dt.datetime, count_text: str, unit_text: str, text: str) -> dt.datetime:
    unit = _UNITS.get(unit_text)
    if unit is None:
        raise ValueError(
            f"unknown unit {unit_text!r} in {text!r} (use ms, s, m, h, d, w, mo, y or their "
            "names: seconds, minutes, hours, days, weeks, months, years)"
        )
    count = 1 if count_text in ("a", "an") else int(count_text)
    try:
        if unit in ("months", "years"):
            return _months_before(now, count * (12 if unit == "years" else 1))
        return now - dt.timedelta(**{unit: count})
    except OverflowError:
        raise ValueError(f"{text!r} is before 1970") from None


def _months_before(now: dt.datetime, months: int) -> dt.datetime:
    index = now.year * 12 + now.month - 1 - months
    year, month = divmod(index, 12)
    if year < 1:
        raise OverflowError
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def _iso(text: str) -> dt.datetime:
    raw = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} ({GRAMMAR_HINT})") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
