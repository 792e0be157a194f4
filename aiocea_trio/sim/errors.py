"""Binance error replies raised inside the simulator's handlers."""

from __future__ import annotations

__all__ = ["ApiError", "SimulatedDisconnect", "mandatory"]


class ApiError(Exception):
    """A Binance error: answered as ``{"code": code, "msg": msg}`` with the HTTP status."""

    def __init__(
        self,
        code: int,
        msg: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}


class SimulatedDisconnect(Exception):
    """Raised by the app to cut the connection mid-response (a "dropped connection" fault)."""


def mandatory(name: str) -> ApiError:
    """-1102 for a missing or malformed mandatory parameter, worded as Binance does."""
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )
