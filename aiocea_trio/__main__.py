"""``python -m aiocea_trio`` is the ``aiocea-trio`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
