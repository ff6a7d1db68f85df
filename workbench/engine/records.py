"""`NamedTuple` and `TypedDict` with typing's class syntax, without importing typing.

    class Point(NamedTuple):
        x: int
        y: int = 0

Importing typing and building its named tuples (each field annotation compiled into a ForwardRef)
cost every CLI command ~5 ms here, a tenth of its imports. These build what typing builds from the
same class body: a `collections.namedtuple` with the annotated fields, their defaults, and the
class's methods and docstring; a `dict` subclass that knows its keys. Annotations stay the strings
`from __future__ import annotations` makes them. Type checkers see typing's own classes.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import NamedTuple as NamedTuple
    from typing import TypedDict as TypedDict
else:
    # What a class body may not redefine, and what is not copied onto the tuple (as typing).
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                             "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict) -> type:
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError("a NamedTuple class can only have NamedTuple as its base")
            fields = list(namespace.get("__annotations__", {}))
            with_default: list[str] = []
            for field in fields:
                if field in namespace:
                    with_default.append(field)
                elif with_default:
                    raise TypeError(f"Non-default namedtuple field {field} cannot follow default field"
                                    f"{'s' if len(with_default) > 1 else ''} {', '.join(with_default)}")
            cls = collections.namedtuple(name, fields, defaults=[namespace[f] for f in with_default],
                                         module=namespace.get("__module__"))
            cls.__annotations__ = dict(namespace.get("__annotations__", {}))
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in cls._fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of a named tuple class (typing.NamedTuple's syntax)."""

    class _TypedDictMeta(type):
        def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict, total: bool = True) -> type:
            if not bases:  # TypedDict itself
                return super().__new__(mcls, name, bases, namespace)
            if bases != (TypedDict,):
                raise TypeError("a TypedDict class can only have TypedDict as its base")
            cls = type(name, (dict,), dict(namespace))
            keys = frozenset(namespace.get("__annotations__", {}))
            cls.__annotations__ = dict(namespace.get("__annotations__", {}))
            cls.__total__ = total
            cls.__required_keys__ = keys if total else frozenset()
            cls.__optional_keys__ = frozenset() if total else keys
            return cls

    class TypedDict(metaclass=_TypedDictMeta):
        """Base of a typed dict class (typing.TypedDict's syntax): a dict subclass with its keys."""
