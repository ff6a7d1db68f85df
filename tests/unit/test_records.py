"""engine.records builds what typing builds from the same class body, without importing typing."""

from __future__ import annotations

import pickle
import subprocess
import sys
import typing

import pytest

from workbench.engine import records


def _pair(base_nt):
    class Point(base_nt):
        """A point."""

        x: int
        y: int = 0
        label: str = "origin"

        def norm1(self) -> int:
            return abs(self.x) + abs(self.y)

        @property
        def flipped(self) -> Point:
            return self._replace(x=self.y, y=self.x)

    return Point


def test_named_tuple_matches_typings():
    ours, theirs = _pair(records.NamedTuple), _pair(typing.NamedTuple)
    for cls in (ours, theirs):
        p = cls(3, -4)
        assert isinstance(p, tuple) and p == (3, -4, "origin")
        assert p.norm1() == 7 and p.flipped == (-4, 3, "origin")
        assert cls._fields == ("x", "y", "label") and cls._field_defaults == {"y": 0, "label": "origin"}
        assert p._asdict() == {"x": 3, "y": -4, "label": "origin"}
        assert cls.__doc__ == "A point." and cls.__name__ == "Point"
        assert list(cls.__annotations__) == ["x", "y", "label"]
        with pytest.raises(TypeError):
            cls()  # x has no default
    assert ours.__module__ == theirs.__module__ == __name__


def test_named_tuple_pickles_by_name():
    p = _Pair(1, "a")
    assert pickle.loads(pickle.dumps(p)) == p


class _Pair(records.NamedTuple):
    n: int
    s: str


def test_named_tuple_rejects_what_typing_rejects():
    with pytest.raises(TypeError, match="Non-default namedtuple field b cannot follow default field a"):
        class Bad(records.NamedTuple):
            a: int = 1
            b: int
    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _replace"):
        class Worse(records.NamedTuple):
            a: int

            def _replace(self, **kw):  # noqa: ANN001
                return self


def test_typed_dict_knows_its_keys_like_typings():
    class Ours(records.TypedDict, total=False):
        memory: int
        cpus: float

    class Theirs(typing.TypedDict, total=False):
        memory: int
        cpus: float

    for cls in (Ours, Theirs):
        assert set(cls.__annotations__) == {"memory", "cpus"}
        assert cls.__total__ is False and cls.__optional_keys__ == {"memory", "cpus"} and not cls.__required_keys__
        assert cls(memory=1) == {"memory": 1} and isinstance(cls(memory=1), dict)


def test_the_engine_imports_without_typing():
    """`import workbench` and the modules of a container's lifecycle leave typing unloaded (its
    import and typed named tuples cost every CLI command ~5 ms)."""
    code = ("import sys, workbench, workbench.cli, workbench.engine.runtime, workbench.engine.lifecycle, "
            "workbench.commands.containers; print(sorted(m for m in ('typing', 'pandas', 'ipywidgets', 'pyroute2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
