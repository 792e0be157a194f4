"""The ``aiocea-trio`` command line (needs the ``cli`` extra: click and rich)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``aiocea-trio`` and ``python -m aiocea_trio``."""
    try:
        from ._app import cli
    except ImportError as exc:  # the extra is optional so that the library stays small
        print(
            f"aiocea-trio: the command line needs its extra ({exc.name} is missing): "
            "pip install 'aiocea-trio[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C while starting up: the same end as anywhere else
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    # Every other way a command ends (Ctrl-C included) is decided in `_app._Cli`.
    cli.main(args=list(argv) if argv is not None else None, prog_name="aiocea-trio")
