"""One error policy for every nursery the library owns: groups only when errors coincide.

trio wraps whatever leaves a nursery in a `BaseExceptionGroup`, even a lone error. The
library's concurrency is internal (a user who calls `download_klines` or leaves an
`async with op.completed()` block did not ask for a nursery), so what comes out of it
follows this rule instead:

| what happened | what comes out |
| --- | --- |
| one error (in the caller's body, a worker, a source, a child task) | that exception itself |
| several errors at the same moment | one flat `ExceptionGroup` of them (see below) |
| a `KeyboardInterrupt` among them | that `KeyboardInterrupt`, bare |
| a `SystemExit` among them (no `KeyboardInterrupt`) | that `SystemExit`, bare |
| only `trio.Cancelled` | one bare `trio.Cancelled`, which the cancelled scope catches |
| `trio.Cancelled` and one real error | the real error |

The flat group is a `BaseExceptionGroup` when one of its errors is not an `Exception`.
An exception raised by the caller's own body is one error whatever its type: an
`ExceptionGroup` the body raised comes out as it went in, never unwrapped.

Dropping a `trio.Cancelled` beside a real error loses nothing: cancellation in trio is
level-triggered, so the cancelled scope is still cancelled and every later checkpoint in
it raises again; the real error unwinds to (and through) that scope exactly as trio's own
cancel scope does when it strips its `Cancelled` out of a group. When a
`KeyboardInterrupt` or `SystemExit` wins over other errors, those are named in a note on
it (`__notes__`), so a traceback still shows them.

Three forms, one decision (`collapse`):

- `collapse(error)`: the exception to raise for `error` (anything that is not a group is
  returned as is).
- `with collapse_groups(): async with trio.open_nursery() as n: ...`: for a nursery whose
  body is the library's own code.
- `async with open_nursery() as n: ... yield ...`: for an async context manager that
  yields to the caller inside its nursery; the caller's exception is kept whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import NoReturn

import trio

__all__ = ["collapse", "collapse_groups", "leaves", "open_nursery"]

_FATAL: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit)
"""In this order of precedence: they always come out bare."""


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside `error`, nested groups flattened, in order (`[error]` if none)."""
    if not isinstance(error, BaseExceptionGroup):
        return [error]
    out: list[BaseException] = []
    for inner in error.exceptions:
        out.extend(leaves(inner))
    return out


def collapse(error: BaseException) -> BaseException:
    """The one exception to raise in place of `error`, by the table in this module's doc.

    Anything that is not a group is returned unchanged. A group becomes its only real
    error, or a `KeyboardInterrupt`/`SystemExit` it contains, or a bare `trio.Cancelled`
    when it holds nothing else, or else a new flat group of its real errors (same
    message; an `ExceptionGroup` when they are all `Exception`s).
    """
    if not isinstance(error, BaseExceptionGroup):
        return error
    return _decide(leaves(error), error.message)


def _decide(found: Sequence[BaseException], message: str) -> BaseException:
    for kind in _FATAL:
        for leaf in found:
            if isinstance(leaf, kind):
                others = [e for e in found if e is not leaf and not isinstance(e, trio.Cancelled)]
                if others:
                    leaf.add_note(
                        "aiocea_trio: raised at the same time, and dropped in favour of this "
                        "one: " + ", ".join(repr(e) for e in others)
                    )
                return leaf
    real = [e for e in found if not isinstance(e, trio.Cancelled)]
    if not real:
        return found[0]  # a trio.Cancelled: the scope that was cancelled catches it
    if len(real) == 1:
        return real[0]
    return BaseExceptionGroup(message, real)  # an ExceptionGroup if all are Exceptions


def _reraise(error: BaseException) -> NoReturn:
    """Raise `error` keeping its own `__context__` (raising inside a handler replaces it)."""
    context, suppress = error.__context__, error.__suppress_context__
    try:
        raise error
    finally:
        error.__context__ = context
        error.__suppress_context__ = suppress


@contextlib.contextmanager
def collapse_groups() -> Iterator[None]:
    """Re-raise a group leaving the block collapsed (see `collapse`); others pass untouched.

    Wrap a nursery whose body is the library's own code:
    `with collapse_groups(): async with trio.open_nursery() as nursery: ...`.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        error = collapse(group)
        if error is group:  # pragma: no cover - collapse always builds a new group
            raise
        _reraise(error)


def _holds_cancelled(error: BaseException) -> bool:
    return any(isinstance(e, trio.Cancelled) for e in leaves(error))


@contextlib.asynccontextmanager
async def open_nursery() -> AsyncIterator[trio.Nursery]:
    """A trio nursery for an async context manager that yields to its caller inside it.

    ``async with open_nursery() as nursery: ...; yield thing`` in an
    `@asynccontextmanager`: the caller's block runs inside the nursery. An exception
    from the caller's block is kept whole (whatever its type, an `ExceptionGroup`
    included): the nursery is cancelled, and once it has closed, that exception comes
    out as it went in, or, if a background task failed too, beside that failure under
    `collapse`'s rules. Exceptions from the background tasks are collapsed.

    A `trio.Cancelled` from the caller's block (or a group holding one) is left to the
    nursery, so that the scope it belongs to, this nursery's included, still catches it.
    Normal exit waits for the background tasks, like any nursery: cancel
    `nursery.cancel_scope` first to stop them.
    """
    body: BaseException | None = None
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                if _holds_cancelled(exc):
                    raise  # the nursery's cancel scope may be the one it belongs to
                # Kept to re-raise as itself once the background tasks have stopped.
                body = exc
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        found = leaves(group) if body is None else [body, *leaves(group)]
        error = _decide(found, group.message)
    else:
        error = body
    if error is not None:
        _reraise(error)
