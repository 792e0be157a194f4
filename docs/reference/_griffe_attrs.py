"""A griffe extension: attrs classes get their generated ``__init__`` in the API reference.

griffe reads the source statically and attrs writes ``__init__`` at import time, so without this
an attrs class would be shown as ``Operator()`` and the ``Args:`` of its docstring would be
reported as parameters that do not exist. For each class that ``attrs.has()`` and that defines no
``__init__`` of its own, this imports the class, reads the signature attrs generated (private
``_x`` fields as ``x``, ``kw_only``, ``init=False`` left out, inherited fields first) and adds it
as ``__init__``, with the annotations griffe found on the fields where it has them (so they
cross-reference).

Loaded by mkdocs.yml (``extensions:`` of the python handler); not part of the package.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import attrs
import griffe

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
    inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
}


def _runtime(cls: griffe.Class) -> type | None:
    try:
        module = importlib.import_module(cls.module.path)
    except ImportError:
        return None
    obj: Any = module
    for part in cls.path[len(cls.module.path) + 1 :].split("."):
        obj = getattr(obj, part, None)
    return obj if inspect.isclass(obj) and attrs.has(obj) else None


def _field_annotation(cls: griffe.Class, name: str) -> str | griffe.Expr | None:
    for owner in [cls, *cls.mro()]:
        for candidate in (name, f"_{name}"):
            member = owner.members.get(candidate)
            if isinstance(member, griffe.Attribute) and member.annotation is not None:
                return member.annotation
    return None


def _default(runtime: type, name: str, value: object) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    for field in attrs.fields(runtime):
        if field.alias == name and isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            factory = field.default.factory  # type: ignore[union-attr]
            return f"{getattr(factory, '__name__', 'factory')}()"
    return repr(value)


class AttrsInit(griffe.Extension):
    """Give attrs classes the ``__init__`` attrs generates for them."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._walk(pkg)

    def _walk(self, obj: griffe.Object) -> None:
        for member in list(obj.members.values()):
            if member.is_alias:
                continue
            if isinstance(member, griffe.Class):
                self._add_init(member)
            if isinstance(member, griffe.Module | griffe.Class):
                self._walk(member)

    def _add_init(self, cls: griffe.Class) -> None:
        if "__init__" in cls.members:
            return
        runtime = _runtime(cls)
        if runtime is None:
            return
        signature = inspect.signature(runtime.__init__)  # type: ignore[misc]
        parameters = []
        for param in signature.parameters.values():
            annotation = None if param.name == "self" else _field_annotation(cls, param.name)
            if annotation is None and param.annotation is not inspect.Parameter.empty:
                annotation = str(param.annotation)
            parameters.append(
                griffe.Parameter(
                    param.name,
                    annotation=annotation,
                    kind=_KINDS[param.kind],
                    default=_default(runtime, param.name, param.default),
                )
            )
        init = griffe.Function(
            "__init__",
            parameters=griffe.Parameters(*parameters),
            returns="None",
            lineno=cls.lineno,
            endlineno=cls.lineno,
        )
        init.labels.add("attrs")
        cls.set_member("__init__", init)
