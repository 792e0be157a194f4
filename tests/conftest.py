"""Shared fixtures. No test reaches the internet: respx or the simulator answers."""

from __future__ import annotations
