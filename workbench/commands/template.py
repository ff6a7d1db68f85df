"""Go text/template, the subset Podman's `--format` takes, evaluated against Python data.

A format is parsed once (`compile_template`) into a small tree and rendered per item. Data are
dicts (Go maps and the structs Podman reports), lists, scalars and plain objects. `table `
formats get a header row and column alignment through `TabWriter`, as Podman's report package.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from functools import lru_cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Collection, Iterator

__all__ = [
    "TabWriter", "Template", "TemplateError", "compile_template", "field_header", "is_table",
    "render", "render_rows", "render_table",
]


class TemplateError(ValueError):
    """A format that cannot be parsed or executed; the message says where and what was wrong."""


# -- values --------------------------------------------------------------------------------------
class _NoValueType:
    """What a missing map key evaluates to; printed as Go prints it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


_NO_VALUE = _NoValueType()
_NO_FINAL = object()  # "no value piped in from the previous command"


class _HeaderRow:
    """The data a table's header row is rendered with: every field is its column title."""

    def __init__(self, overrides: dict[str, str]):
        self.overrides = overrides

    def header(self, path: str, name: str) -> "_Header":
        text = self.overrides.get(path) or self.overrides.get(name) or field_header(name)
        return _Header(text, self, path)


class _Header(str):
    """A column title standing in for a field's value while the header row is rendered."""

    row: _HeaderRow
    path: str

    def __new__(cls, text: str, row: _HeaderRow, path: str) -> "_Header":
        obj = super().__new__(cls, text)
        obj.row, obj.path = row, path
        return obj


_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^A-Za-z\d]+")


def field_header(name: str) -> str:
    """Podman's column title for a field: camel-case words, upper-cased (`CreatedAt` -> `CREATED AT`)."""
    return " ".join(_CAMEL.findall(name)).upper()


def _is_dataclass(v: Any) -> bool:
    return hasattr(v, "__dataclass_fields__") and not isinstance(v, type)


def _dc_values(v: Any) -> dict[str, Any]:
    from dataclasses import fields  # only when a dataclass is printed: keeps import light

    return {f.name: getattr(v, f.name) for f in fields(v)}


def _sorted_keys(d: dict) -> list:
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=str)


def _float_parts(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of abs(f) and the decimal point position: 0.DIGITS x 10^dp."""
    mant, _, exp = repr(abs(f)).partition("e")
    ip, _, fp = mant.partition(".")
    raw = ip + fp
    digits = raw.lstrip("0")
    dp = len(ip) - (len(raw) - len(digits)) + (int(exp) if exp else 0)
    return digits.rstrip("0"), dp


def _float_text(f: float, json_style: bool = False) -> str:
    """A float as Go's %v (shortest %g) or, with json_style, as encoding/json writes it."""
    if f != f:
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    digits, dp = _float_parts(f)
    if not digits:
        return sign + "0"
    x = dp - 1
    if json_style:
        use_exp = abs(f) < 1e-6 or abs(f) >= 1e21
    else:
        use_exp = x < -4 or x >= 6
    if use_exp:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        width = 1 if json_style else 2
        return f"{sign}{mant}e{'-' if x < 0 else '+'}{abs(x):0{width}d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _go_str(v: Any) -> str:
    """A value as Go's fmt %v prints it."""
    if isinstance(v, str):
        return v.value if isinstance(v, Enum) else str.__str__(v)
    if v is _NO_VALUE:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, Enum):
        return _go_str(v.value)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    if isinstance(v, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{_go_str(k)}:{_go_str(v[k])}" for k in _sorted_keys(v)) + "]"
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v, key=str) if isinstance(v, (set, frozenset)) else v
        return "[" + " ".join(_go_str(e) for e in items) + "]"
    if isinstance(v, _HeaderRow):
        return ""
    if _is_dataclass(v):
        return "{" + " ".join(_go_str(value) for value in _dc_values(v).values()) + "}"
    return str(v)


def _go_type(v: Any) -> str:
    """The Go type name fmt shows for a value (%T, bad-verb messages)."""
    if isinstance(v, Enum):
        v = v.value
    if v is None or v is _NO_VALUE:
        return "<nil>"
    for typ, name in ((bool, "bool"), (str, "string"), (int, "int"), (float, "float64"),
                      (dict, "map[string]interface {}"), (bytes, "[]uint8"),
                      ((list, tuple), "[]interface {}")):
        if isinstance(v, typ):
            return name
    return type(v).__name__


def _truth(v: Any) -> bool:
    """Go's notion of true: not the zero value, not empty; structs are always true."""
    if v is None or v is _NO_VALUE:
        return False
    if isinstance(v, (bool, int, float, str, bytes, list, tuple, dict, set, frozenset)):
        return bool(v)
    return True


def _to_json(v: Any) -> str:
    """Compact JSON as Go's json.Marshal writes it (no HTML escaping, Go float forms)."""
    if isinstance(v, Enum):
        v = v.value
    if v is None or v is _NO_VALUE:
        return "null"
    if isinstance(v, str):
        import json

        return json.dumps(str.__str__(v), ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _CallError(f"error calling json: json: unsupported value: {_float_text(v)}")
        return _float_text(v, json_style=True)
    if isinstance(v, dict):
        return "{" + ",".join(f"{_to_json(str(k))}:{_to_json(val)}" for k, val in v.items()) + "}"
    if isinstance(v, (list, tuple, set, frozenset)):
        return "[" + ",".join(_to_json(e) for e in v) + "]"
    if isinstance(v, (bytes, bytearray)):
        import base64

        return '"' + base64.b64encode(bytes(v)).decode() + '"'
    if _is_dataclass(v):
        return _to_json(_dc_values(v))
    return _to_json(str(v))


# -- printf --------------------------------------------------------------------------------------
_VERB = re.compile(r"%([-+# 0]*)(?:\[(\d+)\])?(\d+)?(?:\.(\d*))?(?:\[(\d+)\])?(.?)", re.S)
_QUOTE_ESC = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
              "\v": r"\v", "\\": r"\\"}


def _go_quote(s: str, quote: str = '"') -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    out = [quote]
    for ch in s:
        if ch == quote:
            out.append("\\" + ch)
        elif ch in _QUOTE_ESC:
            out.append(_QUOTE_ESC[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x80 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    out.append(quote)
    return "".join(out)


def _pad(text: str, fl: str, width: int | None) -> str:
    if width is None or len(text) >= width:
        return text
    return text.ljust(width) if "-" in fl else text.rjust(width)


def _pad_num(neg: bool, prefix: str, body: str, fl: str, width: int | None, prec: int | None = None) -> str:
    sign = "-" if neg else "+" if "+" in fl else " " if " " in fl else ""
    if prec is not None:
        body = body.zfill(prec)
    if width is not None and "0" in fl and "-" not in fl and prec is None:
        body = body.rjust(width - len(sign) - len(prefix), "0")
    return _pad(sign + prefix + body, fl, width)


def _bad_verb(verb: str, v: Any) -> str:
    if v is None or v is _NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(v)}={_go_str(v)})"


def _fmt_arg(verb: str, v: Any, fl: str, width: int | None, prec: int | None) -> str:
    """One printf argument under one verb, as Go's fmt formats it."""
    if verb == "T":
        return _pad(_go_type(v), fl, width)
    if isinstance(v, _Header):  # header row: show the title whatever the verb, keeping the width
        return _pad(v if prec is None else v[:prec], fl, width)
    if isinstance(v, Enum):
        v = v.value
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_fmt_arg(verb, e, fl, width, prec) for e in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{_fmt_arg(verb, k, fl, width, prec)}:{_fmt_arg(verb, v[k], fl, width, prec)}"
                                 for k in _sorted_keys(v)) + "]"
    if v is None or v is _NO_VALUE:
        return _pad("<nil>", fl, width) if verb == "v" else _bad_verb(verb, v)
    if isinstance(v, bool):
        return _pad(_go_str(v), fl, width) if verb in "vt" else _bad_verb(verb, v)
    if isinstance(v, int):
        return _fmt_int(verb, v, fl, width, prec)
    if isinstance(v, float):
        return _fmt_float(verb, v, fl, width, prec)
    if isinstance(v, (bytes, bytearray)):
        if verb in "sq":
            v = bytes(v).decode("utf-8", "replace")
        elif verb in "xX":
            text = bytes(v).hex()
            return _pad(text.upper() if verb == "X" else text, fl, width)
        else:
            return _fmt_arg(verb, list(v), fl, width, prec)
    if isinstance(v, str):
        if prec is not None:
            v = v[:prec]
        if verb in "vs":
            return _pad(v, fl, width)
        if verb == "q":
            return _pad(_go_quote(v), fl, width)
        if verb in "xX":
            text = v.encode().hex()
            return _pad(text.upper() if verb == "X" else text, fl, width)
        return _bad_verb(verb, v)
    if verb in "vs":
        return _pad(_go_str(v), fl, width)
    return _bad_verb(verb, v)


def _fmt_int(verb: str, v: int, fl: str, width: int | None, prec: int | None) -> str:
    neg, a = v < 0, abs(v)
    if verb in "vd":
        return _pad_num(neg, "", str(a), fl, width, prec)
    if verb in "bxXo":
        body = format(a, verb)
        prefix = ""
        if "#" in fl:
            prefix = {"b": "0b", "x": "0x", "X": "0X", "o": "0"}[verb]
        return _pad_num(neg, prefix, body, fl, width, prec)
    if verb == "O":
        return _pad_num(neg, "0o", format(a, "o"), fl, width, prec)
    if verb == "c":
        return _pad(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd", fl, width)
    if verb == "q":
        return _pad(_go_quote(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd", "'"), fl, width)
    if verb == "U":
        return _pad(f"U+{v:04X}", fl, width)
    return _bad_verb(verb, v)


def _fmt_float(verb: str, v: float, fl: str, width: int | None, prec: int | None) -> str:
    if verb not in "veEfFgG":
        return _bad_verb(verb, v)
    if not math.isfinite(v):
        text = _float_text(v)
        return _pad(text if text != "+Inf" or "+" in fl else "+Inf", fl, width)
    neg = math.copysign(1.0, v) < 0
    if verb in "vgG" and prec is None:
        body = _float_text(abs(v))
        body = body.upper() if verb == "G" else body
    else:
        spec = {"v": "g", "F": "f"}.get(verb, verb)
        body = format(abs(v), f".{6 if prec is None else prec}{spec}")
    return _pad_num(neg, "", body, fl, width)


def _sprintf(fmt: str, args: list) -> str:
    """Go's fmt.Sprintf for the verbs %v %s %d %q %t %x %X %o %b %c %e %f %g %T %%."""
    out: list[str] = []
    pos, argi, reordered = 0, 0, False
    while True:
        j = fmt.find("%", pos)
        if j < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:j])
        m = _VERB.match(fmt, j)
        fl, idx1, width, prec, idx2, verb = m.groups()
        pos = m.end()
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            break
        if idx1 or idx2:
            argi, reordered = int(idx1 or idx2) - 1, True
        if argi < 0 or argi >= len(args):
            out.append(f"%!{verb}(BADINDEX)" if reordered else f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_fmt_arg(verb, arg, fl, int(width) if width else None,
                            (int(prec) if prec else 0) if prec is not None else None))
    if not reordered and argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{_go_type(a)}={_go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _sprint(args: list) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_go_str(a))
    return "".join(out)


# -- functions -----------------------------------------------------------------------------------
class _CallError(Exception):
    """Raised by a template function; the executor adds where it happened."""


def _want_str(v: Any) -> str:
    if isinstance(v, Enum):
        v = v.value
    if isinstance(v, str):
        return str.__str__(v)
    if v is None or v is _NO_VALUE:
        raise _CallError("invalid value; expected string")
    raise _CallError(f"wrong type for value; expected string; got {_go_type(v)}")


def _want_int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise _CallError(f"wrong type for value; expected int; got {_go_type(v)}")


def _f_join(items: Any, sep: Any) -> str:
    if not isinstance(items, (list, tuple)):
        raise _CallError(f"wrong type for value; expected []string; got {_go_type(items)}")
    return _want_str(sep).join(_go_str(e) for e in items)


def _f_split(s: Any, sep: Any) -> list[str]:
    s, sep = _want_str(s), _want_str(sep)
    return list(s) if sep == "" else s.split(sep)


def _f_title(s: Any) -> str:
    out, prev_sep = [], True
    for ch in _want_str(s):
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _f_truncate(s: Any, n: Any) -> str:
    s, n = _want_str(s), _want_int(n)
    return s if len(s) < n else s[:max(n, 0)]


def _f_pad(s: Any, before: Any, after: Any) -> str:
    return " " * _want_int(before) + _want_str(s) + " " * _want_int(after)


def _f_len(v: Any) -> int:
    if isinstance(v, (str, list, tuple, dict, bytes, set, frozenset)):
        return len(v)
    if v is None:
        raise _CallError("error calling len: len of nil pointer")
    raise _CallError(f"error calling len: len of type {_go_type(v)}")


def _f_index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if v is None:
            raise _CallError("error calling index: index of untyped nil")
        if isinstance(v, dict):
            if k in v:
                v = v[k]
            else:  # Go gives the map's zero element: "" for the usual map[string]string
                v = "" if all(isinstance(e, str) for e in v.values()) else None
        elif isinstance(v, (list, tuple, str, bytes)):
            if isinstance(k, bool) or not isinstance(k, int):
                raise _CallError(f"error calling index: cannot index slice/array with type {_go_type(k)}")
            seq = v.encode() if isinstance(v, str) else v
            if not 0 <= k < len(seq):
                raise _CallError(f"error calling index: index out of range: {k}")
            v = seq[k]
        else:
            raise _CallError(f"error calling index: can't index item of type {_go_type(v)}")
    return v


def _f_slice(v: Any, *idx: Any) -> Any:
    if not isinstance(v, (str, list, tuple)):
        raise _CallError(f"error calling slice: can't slice item of type {_go_type(v)}")
    if len(idx) > 3 or (len(idx) == 3 and isinstance(v, str)):
        raise _CallError("error calling slice: too many slice indexes")
    bounds = [_want_int(i) for i in idx]
    for b in bounds:
        if not 0 <= b <= len(v):
            raise _CallError(f"error calling slice: index out of range: {b}")
    if len(bounds) >= 2 and bounds[0] > bounds[1]:
        raise _CallError(f"error calling slice: invalid slice index: {bounds[0]} > {bounds[1]}")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(v)
    return v[start:end]


def _kind(v: Any) -> str:
    if v is None or v is _NO_VALUE:
        return "nil"
    if isinstance(v, Enum):
        return _kind(v.value)
    for typ, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string")):
        if isinstance(v, typ):
            return name
    if isinstance(v, (list, tuple, dict, set, bytes)):
        return "uncomparable"
    return "other"


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


def _f_eq(a: Any, *others: Any) -> bool:
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka == "nil" or kb == "nil":
            if ka == kb:
                return True
            continue
        if "uncomparable" in (ka, kb):
            raise _CallError("error calling eq: non-comparable type")
        if ka != kb:
            raise _CallError("error calling eq: incompatible types for comparison")
        if _plain(a) == _plain(b):
            return True
    return False


def _f_ne(a: Any, b: Any) -> bool:
    try:
        return not _f_eq(a, b)
    except _CallError as exc:
        raise _CallError(str(exc).replace("calling eq", "calling ne")) from None


def _ordered(name: str, a: Any, b: Any) -> tuple[Any, Any]:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise _CallError(f"error calling {name}: invalid type for comparison")
    if ka != kb:
        raise _CallError(f"error calling {name}: incompatible types for comparison")
    return _plain(a), _plain(b)


def _cmp(name: str, op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: op(*_ordered(name, a, b))


def _f_html(*args: Any) -> str:
    s = _sprint(list(args))
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("\0", "\ufffd"))


def _f_urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(list(args)), safe="-_.~")


def _str_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args: fn(*(_want_str(a) for a in args))


# name -> (function, least args, most args or None for any)
_FUNCS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "json": (_to_json, 1, 1),
    "upper": (_str_fn(str.upper), 1, 1),
    "lower": (_str_fn(str.lower), 1, 1),
    "title": (_f_title, 1, 1),
    "join": (_f_join, 2, 2),
    "split": (_f_split, 2, 2),
    "truncate": (_f_truncate, 2, 2),
    "pad": (_f_pad, 3, 3),
    "len": (_f_len, 1, 1),
    "index": (_f_index, 1, None),
    "slice": (_f_slice, 1, None),
    "printf": (lambda fmt, *a: _sprintf(_want_str(fmt), list(a)), 1, None),
    "print": (lambda *a: _sprint(list(a)), 0, None),
    "println": (lambda *a: " ".join(_go_str(x) for x in a) + "\n", 0, None),
    "html": (_f_html, 0, None),
    "urlquery": (_f_urlquery, 0, None),
    "eq": (_f_eq, 2, None),
    "ne": (_f_ne, 2, 2),
    "lt": (_cmp("lt", lambda a, b: a < b), 2, 2),
    "le": (_cmp("le", lambda a, b: a <= b), 2, 2),
    "gt": (_cmp("gt", lambda a, b: a > b), 2, 2),
    "ge": (_cmp("ge", lambda a, b: a >= b), 2, 2),
    "not": (lambda v: not _truth(v), 1, 1),
    "and": (lambda *a: a[-1], 1, None),  # evaluated lazily by the executor
    "or": (lambda *a: a[-1], 1, None),
    # sprig-style helpers: the subject comes last so they read well at the end of a pipeline
    "contains": (_str_fn(lambda sub, s: sub in s), 2, 2),
    "hasPrefix": (_str_fn(lambda pre, s: s.startswith(pre)), 2, 2),
    "hasSuffix": (_str_fn(lambda suf, s: s.endswith(suf)), 2, 2),
    "trim": (_str_fn(lambda s: s.strip(" \t\n\r\v\f")), 1, 1),
    "replace": (_str_fn(lambda old, new, s: s.replace(old, new)), 3, 3),
}
# Functions over structured data: on the header row they just pass the column title through.
_STRUCTURAL = frozenset({"json", "len", "index", "slice", "join", "split"})


# -- lexer ---------------------------------------------------------------------------------------
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block",
                       "break", "continue"})
_SPACE = " \t\r\n"
_TOKEN = re.compile(r"""
  (?P<declare>:=)
| (?P<assign>=)
| (?P<pipe>\|)
| (?P<lparen>\()
| (?P<rparen>\))
| (?P<comma>,)
| (?P<string>"(?:[^"\\\n]|\\.)*")
| (?P<raw>`[^`]*`)
| (?P<char>'(?:[^'\\\n]|\\[^\n])(?:[^'\\\n]|\\[^\n])*')
| (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+
      |\d[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?\d+)?|\.\d[\d_]*(?:[eE][+-]?\d+)?))
| (?P<field>\.[^\W\d]\w*)
| (?P<dot>\.)
| (?P<var>\$\w*)
| (?P<ident>[^\W\d]\w*)
""", re.X)
_ESCAPE = re.compile(r"""\\(?:([abfnrtv\\"'])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))""",
                     re.S)
_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", '"': '"', "'": "'"}


class _Tok:
    __slots__ = ("kind", "text", "pos", "space")

    def __init__(self, kind: str, text: str, pos: int, space: bool):
        self.kind, self.text, self.pos, self.space = kind, text, pos, space


def _unquote(body: str) -> str:
    """The value of a Go interpreted string literal's body (escapes resolved)."""
    if "\\" not in body:
        return body
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        out += body[pos:m.start()].encode()
        simple, hx, octal, u4, u8, bad = m.groups()
        if bad is not None:
            raise ValueError(f"unknown escape sequence: \\{bad}")
        if simple:
            out += _SIMPLE_ESC[simple].encode()
        elif hx or octal:
            out.append(int(hx, 16) if hx else int(octal, 8) & 0xFF)
        else:
            out += chr(int(u4 or u8, 16)).encode("utf-8", "replace")
        pos = m.end()
    out += body[pos:].encode()
    return out.decode("utf-8", "replace")


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    low = t.lower()
    if low.startswith(("0x", "0b", "0o")):
        return sign * int(t, 0)
    if "." in t or ("e" in low):
        return sign * float(t)
    if len(t) > 1 and t.startswith("0"):
        return sign * int(t, 8)
    return sign * int(t)


# -- tree ----------------------------------------------------------------------------------------
class _Node:
    __slots__ = ("pos", "end")


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _Field(_Node):
    __slots__ = ("names",)

    def __init__(self, names: list[str]):
        self.names = names


class _Chain(_Node):
    __slots__ = ("node", "names")

    def __init__(self, node: _Node, names: list[str]):
        self.node, self.names = node, names


class _Var(_Node):
    __slots__ = ("name", "names")

    def __init__(self, name: str, names: list[str]):
        self.name, self.names = name, names


class _Dot(_Node):
    __slots__ = ()


class _Nil(_Node):
    __slots__ = ()


class _Lit(_Node):
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Cmd(_Node):
    __slots__ = ("args",)

    def __init__(self, args: list[_Node]):
        self.args = args


class _Pipe(_Node):
    __slots__ = ("decl", "assign", "cmds")

    def __init__(self, decl: list[str], assign: bool, cmds: list[_Cmd]):
        self.decl, self.assign, self.cmds = decl, assign, cmds


class _Action(_Node):
    __slots__ = ("pipe", "field")

    def __init__(self, pipe: _Pipe):
        self.pipe = pipe
        # `{{.Name}}`, the usual action: its field name, looked up directly in a mapping dot
        cmds = pipe.cmds
        only = cmds[0].args[0] if len(cmds) == 1 and len(cmds[0].args) == 1 and not pipe.decl else None
        self.field = only.names[0] if type(only) is _Field and len(only.names) == 1 else None


class _Branch(_Node):
    """`if`, `with` and `range`: a pipeline, a body and an optional else body."""

    __slots__ = ("kind", "pipe", "body", "else_")

    def __init__(self, kind: str, pipe: _Pipe, body: list[_Node], else_: list[_Node] | None):
        self.kind, self.pipe, self.body, self.else_ = kind, pipe, body, else_


class _Call(_Node):
    __slots__ = ("name", "pipe")

    def __init__(self, name: str, pipe: _Pipe | None):
        self.name, self.pipe = name, pipe


class _Loop(_Node):
    __slots__ = ("kind",)  # "break" or "continue"

    def __init__(self, kind: str):
        self.kind = kind


_OPERAND_ONLY = (_Lit, _Nil, _Dot, _Pipe)


class _Parser:
    """Text -> tree, with Go's parse-time checks (functions, variables, block structure)."""

    def __init__(self, src: str, name: str, escapes: bool):
        self.src, self.name, self.escapes = src, name, escapes
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.defs: dict[str, list[_Node]] = {}
        self._next = 0
        self.items = self._scan()
        self.i = 0

    # errors
    def error(self, pos: int, msg: str) -> TemplateError:
        line = self.src.count("\n", 0, pos) + 1
        return TemplateError(f"template: {self.name}:{line}: {msg}")

    # scanning: text and actions
    def _text(self, text: str) -> str:
        if self.escapes:
            text = text.replace("\\t", "\t").replace("\\n", "\n")
        return text

    def _scan(self) -> list[tuple[str, Any, int]]:
        src, n = self.src, len(self.src)
        items: list[tuple[str, Any, int]] = []
        pos, trim_next = 0, False
        while True:
            start = src.find("{{", pos)
            text = self._text(src[pos:] if start < 0 else src[pos:start])
            if trim_next:
                text = text.lstrip(_SPACE)
            ltrim = start >= 0 and src.startswith("-", start + 2) and start + 3 < n and src[start + 3] in _SPACE
            if ltrim:
                text = text.rstrip(_SPACE)
            if text:
                items.append(("text", text, pos))
            if start < 0:
                return items
            p = start + (4 if ltrim else 2)
            if src.startswith("/*", p):
                close = src.find("*/", p + 2)
                if close < 0:
                    raise self.error(start, "unclosed comment")
                q = close + 2
                if src.startswith("}}", q):
                    pos, trim_next = q + 2, False
                elif q < n and src[q] in _SPACE and src.startswith("-}}", q + 1):
                    pos, trim_next = q + 4, True
                else:
                    raise self.error(start, "comment ends before closing delimiter")
                continue
            toks, pos, trim_next = self._lex_action(p, start)
            items.append(("action", toks, start))

    def _lex_action(self, p: int, start: int) -> tuple[list[_Tok], int, bool]:
        src, n = self.src, len(self.src)
        toks: list[_Tok] = []
        while True:
            q = p
            while q < n and src[q] in _SPACE:
                q += 1
            space = q > p
            p = q
            if src.startswith("}}", p):
                return toks, p + 2, False
            if space and src.startswith("-}}", p):
                return toks, p + 3, True
            if p >= n:
                raise self.error(start, "unclosed action")
            m = _TOKEN.match(src, p)
            if not m:
                ch = src[p]
                if ch == '"':
                    raise self.error(p, "unterminated quoted string")
                if ch == "`":
                    raise self.error(p, "unterminated raw quoted string")
                if ch == "'":
                    raise self.error(p, "unterminated character constant")
                if src.find("}}", p) < 0:
                    raise self.error(start, "unclosed action")
                if src.startswith("/*", p):
                    raise self.error(p, "comment must be the whole action: {{/* ... */}}")
                raise self.error(p, f"unrecognized character in action: {ch!r}")
            kind, text = m.lastgroup, m.group()
            if kind in ("number", "field", "ident", "var") and m.end() < n and (
                    src[m.end()].isalnum() or (kind == "number" and src[m.end()] in "._")):
                raise self.error(p, f"bad {'number syntax' if kind == 'number' else 'character'}: "
                                    f"{src[p:m.end() + 1]!r}")
            toks.append(_Tok(kind, text, p, space))
            p = m.end()

    # the tree
    def parse(self) -> tuple[list[_Node], dict[str, list[_Node]]]:
        nodes, _term, _rest, _pos = self.parse_list(top=True)
        return nodes, self.defs

    def parse_list(self, top: bool = False) -> tuple[list[_Node], str | None, list[_Tok], int]:
        nodes: list[_Node] = []
        while self.i < len(self.items):
            kind, val, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(_Text(val))
                continue
            if not val:
                raise self.error(pos, "missing value for command")
            t0 = val[0]
            if t0.kind == "ident" and t0.text in _KEYWORDS:
                if t0.text in ("end", "else"):
                    if top:
                        raise self.error(pos, f"unexpected {{{{{t0.text}}}}}")
                    return nodes, t0.text, val[1:], pos
                node = self.parse_control(t0.text, val[1:], pos, top)
                if node is not None:
                    nodes.append(node)
            else:
                node = _Action(self.parse_pipe(val, 0, "command", "single", pos, whole=True))
                node.pos, node.end = pos, pos
                nodes.append(node)
        if not top:
            raise self.error(len(self.src), "unexpected EOF: a control block is missing its {{end}}")
        return nodes, None, [], len(self.src)

    def parse_control(self, kw: str, toks: list[_Tok], pos: int, top: bool) -> _Node | None:
        if kw in ("break", "continue"):
            if toks:
                raise self.error(pos, f"unexpected {toks[0].text!r} in {{{{{kw}}}}}")
            if not self.range_depth:
                raise self.error(pos, f"{{{{{kw}}}}} outside {{{{range}}}}")
            return self._at(_Loop(kw), pos)
        if kw in ("define", "block", "template"):
            return self.parse_template(kw, toks, pos, top)
        mark = len(self.vars)
        pipe = self.parse_pipe(toks, 0, kw, "range" if kw == "range" else "single", pos, whole=True)
        if kw == "range":
            self.range_depth += 1
        body, term, rest, tpos = self.parse_list()
        if kw == "range":
            self.range_depth -= 1
        else_: list[_Node] | None = None
        if term == "else":
            if rest and rest[0].kind == "ident" and rest[0].text == kw and kw in ("if", "with"):
                else_ = [self.parse_control(kw, rest[1:], tpos, False)]  # shares the outer {{end}}
            elif rest:
                raise self.error(tpos, f"unexpected {rest[0].text!r} in {{{{else}}}}")
            else:
                else_, term, rest, tpos = self.parse_list()
                if term != "end":
                    raise self.error(tpos, f"expected {{{{end}}}}; found {{{{{term}}}}}")
        if term == "end" and rest:
            raise self.error(tpos, f"unexpected {rest[0].text!r} in {{{{end}}}}")
        del self.vars[mark:]
        return self._at(_Branch(kw, pipe, body, else_), pos)

    def parse_template(self, kw: str, toks: list[_Tok], pos: int, top: bool) -> _Node | None:
        if not toks or toks[0].kind not in ("string", "raw"):
            raise self.error(pos, f"{{{{{kw}}}}} needs a template name in quotes")
        name = self._literal(toks[0]).value
        rest = toks[1:]
        pipe = self.parse_pipe(rest, 0, kw, None, pos, whole=True) if rest else None
        if kw == "template":
            return self._at(_Call(name, pipe), pos)
        if not top:
            raise self.error(pos, f"{{{{{kw}}}}} is only allowed at the top level")
        if kw == "define" and rest:
            raise self.error(pos, f"unexpected {rest[0].text!r} in {{{{define}}}}")
        if kw == "block" and pipe is None:
            raise self.error(pos, "missing value for {{block}}")
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, term, rest2, tpos = self.parse_list()
        self.vars, self.range_depth = saved
        if term != "end" or rest2:
            raise self.error(tpos, f"expected {{{{end}}}} for {{{{{kw} {toks[0].text}}}}}")
        self.defs[name] = body
        return self._at(_Call(name, pipe), pos) if kw == "block" else None

    def parse_pipe(self, toks: list[_Tok], i: int, ctx: str, decl_mode: str | None, pos: int,
                   whole: bool = False) -> _Pipe:
        """A pipeline from toks[i:]; stops at `)` unless whole. Sets self._next to the stop index."""
        start = toks[i].pos if i < len(toks) else pos
        decl: list[str] = []
        assign = False
        kinds = [t.kind for t in toks[i:i + 4]]
        if decl_mode and kinds[:1] == ["var"]:
            if kinds[1:2] in (["declare"], ["assign"]):
                decl, assign, i = [toks[i].text], kinds[1] == "assign", i + 2
            elif decl_mode == "range" and kinds[1:3] == ["comma", "var"] and kinds[3:4] in (["declare"], ["assign"]):
                decl, assign, i = [toks[i].text, toks[i + 2].text], kinds[3] == "assign", i + 4
            elif kinds[1:2] == ["comma"]:
                raise self.error(pos, f"too many declarations in {ctx}")
        for v in decl:
            if v == "$":
                raise self.error(pos, "cannot declare or assign $")
            if assign and v not in self.vars:
                raise self.error(pos, f'undefined variable "{v}"')
        cmds: list[_Cmd] = []
        while True:
            cmd, i = self.parse_command(toks, i, pos)
            if cmds and isinstance(cmd.args[0], _OPERAND_ONLY + (_Var,)) and not (
                    isinstance(cmd.args[0], _Var) and cmd.args[0].names):
                raise self.error(pos, f"can't give argument to non-function {self._src(cmd.args[0])}")
            cmds.append(cmd)
            if i < len(toks) and toks[i].kind == "pipe":
                i += 1
                if i >= len(toks) or toks[i].kind == "rparen":
                    raise self.error(pos, f"missing command after | in {ctx}")
                continue
            break
        if whole and i < len(toks):
            raise self.error(toks[i].pos, f"unexpected {toks[i].text!r} in {ctx}")
        self._next = i
        if not assign:
            self.vars.extend(decl)
        pipe = _Pipe(decl, assign, cmds)
        pipe.pos, pipe.end = start, cmds[-1].end
        return pipe

    def parse_command(self, toks: list[_Tok], i: int, pos: int) -> tuple[_Cmd, int]:
        args: list[_Node] = []
        while i < len(toks) and toks[i].kind not in ("pipe", "rparen"):
            if args and toks[i].kind in ("declare", "assign", "comma"):
                raise self.error(toks[i].pos, f"unexpected {toks[i].text!r} in operand")
            node, i = self.parse_operand(toks, i, pos)
            args.append(node)
        if not args:
            at = toks[i].pos if i < len(toks) else pos
            raise self.error(at, "missing value for command")
        first = args[0]
        if len(args) > 1 and (isinstance(first, _OPERAND_ONLY) or (isinstance(first, _Var) and not first.names)):
            raise self.error(first.pos, f"can't give argument to non-function {self._src(first)}")
        cmd = _Cmd(args)
        cmd.pos, cmd.end = args[0].pos, args[-1].end
        return cmd, i

    def _fields(self, toks: list[_Tok], i: int) -> tuple[list[str], int]:
        names: list[str] = []
        while i < len(toks) and toks[i].kind == "field" and not toks[i].space:
            names.append(toks[i].text[1:])
            i += 1
        return names, i

    def _literal(self, tok: _Tok) -> _Lit:
        try:
            if tok.kind == "string":
                value: Any = _unquote(tok.text[1:-1])
            elif tok.kind == "raw":
                value = tok.text[1:-1]
            elif tok.kind == "char":
                s = _unquote(tok.text[1:-1])
                if len(s) != 1:
                    raise ValueError(f"malformed character constant: {tok.text}")
                value = ord(s)
            else:
                value = _number(tok.text)
        except ValueError as exc:
            msg = str(exc) if tok.kind != "number" else f"bad number syntax: {tok.text!r}"
            raise self.error(tok.pos, msg) from None
        return _Lit(value)

    def parse_operand(self, toks: list[_Tok], i: int, pos: int) -> tuple[_Node, int]:
        tok = toks[i]
        k = tok.kind
        i += 1
        node: _Node
        if k == "field":
            names, i = self._fields(toks, i)
            node = _Field([tok.text[1:]] + names)
        elif k == "var":
            if tok.text not in self.vars:
                raise self.error(tok.pos, f'undefined variable "{tok.text}"')
            names, i = self._fields(toks, i)
            node = _Var(tok.text, names)
        elif k == "dot":
            node = _Dot()
        elif k == "lparen":
            inner = self.parse_pipe(toks, i, "parenthesized pipeline", None, tok.pos)
            i = self._next
            if i >= len(toks) or toks[i].kind != "rparen":
                raise self.error(tok.pos, "unclosed left paren")
            inner.pos, inner.end = tok.pos, toks[i].pos + 1
            i += 1
            names, i = self._fields(toks, i)
            if not names:
                return inner, i
            node = _Chain(inner, names)
            node.pos, node.end = tok.pos, toks[i - 1].pos + len(toks[i - 1].text)
            return node, i
        elif k in ("string", "raw", "char", "number"):
            node = self._literal(tok)
        elif k == "ident":
            if tok.text in ("true", "false"):
                node = _Lit(tok.text == "true")
            elif tok.text == "nil":
                node = _Nil()
            elif tok.text in _KEYWORDS:
                raise self.error(tok.pos, f"unexpected <{tok.text}> in command")
            elif tok.text in _FUNCS:
                node = _Ident(tok.text)
            else:
                raise self.error(tok.pos, f'function "{tok.text}" not defined')
        elif k == "rparen":
            raise self.error(tok.pos, "unexpected right paren")
        else:
            raise self.error(tok.pos, f"unexpected {tok.text!r} in operand")
        if i < len(toks) and toks[i].kind == "field" and not toks[i].space:
            raise self.error(toks[i].pos, f"unexpected {toks[i].text} after term {tok.text!r}")
        node.pos, node.end = tok.pos, toks[i - 1].pos + len(toks[i - 1].text)
        return node, i

    def _src(self, node: _Node) -> str:
        return self.src[node.pos:node.end]

    @staticmethod
    def _at(node: _Node, pos: int) -> _Node:
        node.pos = node.end = pos
        return node


# -- execution -----------------------------------------------------------------------------------
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_MAX_DEPTH = 200


class _Exec:
    """One rendering: the variable stack, the output, and Go's evaluation rules."""

    def __init__(self, tpl: "Template", root: Any, strict: "bool | Collection[str]"):
        self.tpl = tpl
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []
        self.maps = frozenset(() if strict is True else strict or ())
        if strict is True:
            self.structs = {id(root)} if isinstance(root, dict) else set()
        else:
            self.structs = _struct_ids(root, self.maps)
        self.header = isinstance(root, _HeaderRow)
        self.depth = 0

    def error(self, node: _Node, msg: str) -> TemplateError:
        src, name = self.tpl.source, self.tpl.name
        line = src.count("\n", 0, node.pos) + 1
        col = node.pos - (src.rfind("\n", 0, node.pos) + 1)
        return TemplateError(f'template: {name}:{line}:{col}: executing "{name}" at '
                             f"<{src[node.pos:node.end]}>: {msg}")

    def lookup(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise TemplateError(f'undefined variable "{name}"')

    def walk(self, dot: Any, nodes: list[_Node]) -> None:
        for node in nodes:
            t = type(node)
            if t is _Text:
                self.out.append(node.text)
            elif t is _Action:
                if node.field is not None and type(dot) is dict and node.field in dot:  # what pipe() gives
                    self.out.append(_go_str(dot[node.field]))
                    continue
                val = self.pipe(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(_go_str(val))
            elif t is _Branch:
                if node.kind == "range":
                    self.range(dot, node)
                else:
                    mark = len(self.vars)
                    val = self.pipe(dot, node.pipe)
                    if _truth(val):
                        self.walk(val if node.kind == "with" else dot, node.body)
                    elif node.else_ is not None:
                        self.walk(dot, node.else_)
                    del self.vars[mark:]
            elif t is _Loop:
                raise _Break() if node.kind == "break" else _Continue()
            elif t is _Call:
                self.call_template(dot, node)

    def call_template(self, dot: Any, node: _Call) -> None:
        body = self.tpl._defs.get(node.name)
        if body is None:
            raise self.error(node, f'no such template "{node.name}"')
        if self.depth >= _MAX_DEPTH:
            raise self.error(node, f"exceeded maximum template depth ({_MAX_DEPTH})")
        val = self.pipe(dot, node.pipe) if node.pipe else None
        saved, self.vars = self.vars, [("$", val)]
        self.depth += 1
        try:
            self.walk(val, body)
        finally:
            self.depth -= 1
            self.vars = saved

    def _range_items(self, node: _Branch, val: Any) -> Iterator[tuple[Any, Any]]:
        if val is None or val is _NO_VALUE:
            return iter(())
        if isinstance(val, _Header):
            return iter([(val, val)])
        if isinstance(val, dict):
            return ((k, val[k]) for k in _sorted_keys(val))
        if isinstance(val, int) and not isinstance(val, bool):
            if len(node.pipe.decl) > 1:
                raise self.error(node.pipe, f"can't use {val} to iterate over more than one variable")
            return ((i, i) for i in range(val))
        if isinstance(val, (list, tuple)):
            return enumerate(val)
        if isinstance(val, (str, bytes, bool, float)) or not hasattr(val, "__iter__"):
            raise self.error(node.pipe, f"range can't iterate over {_go_str(val)}")
        return enumerate(val)

    def range(self, dot: Any, node: _Branch) -> None:
        mark = len(self.vars)
        val = self.commands(dot, node.pipe)
        decl = node.pipe.decl
        ran = False
        for key, elem in self._range_items(node, val):
            ran = True
            del self.vars[mark:]
            if len(decl) == 1:
                self._set(decl[0], elem, node.pipe.assign)
            elif len(decl) == 2:
                self._set(decl[0], key, node.pipe.assign)
                self._set(decl[1], elem, node.pipe.assign)
            try:
                self.walk(elem, node.body)
            except _Continue:
                continue
            except _Break:
                break
        del self.vars[mark:]
        if not ran and node.else_ is not None:
            self.walk(dot, node.else_)

    def _set(self, name: str, value: Any, assign: bool) -> None:
        if assign:
            for i in range(len(self.vars) - 1, -1, -1):
                if self.vars[i][0] == name:
                    self.vars[i] = (name, value)
                    return
        self.vars.append((name, value))

    def commands(self, dot: Any, pipe: _Pipe) -> Any:
        val: Any = _NO_FINAL
        for cmd in pipe.cmds:
            val = self.command(dot, cmd, val)
        return val

    def pipe(self, dot: Any, pipe: _Pipe) -> Any:
        val = self.commands(dot, pipe)
        for name in pipe.decl:
            self._set(name, val, pipe.assign)
        return val

    def command(self, dot: Any, cmd: _Cmd, final: Any) -> Any:
        first, args = cmd.args[0], cmd.args[1:]
        t = type(first)
        if t is _Field:
            return self.chain(dot, dot, first, first.names, args, final)
        if t is _Ident:
            return self.call(dot, first, cmd, args, final)
        if t is _Chain:
            return self.chain(dot, self.arg(dot, first.node), first, first.names, args, final)
        if t is _Var and first.names:
            return self.chain(dot, self.lookup(first.name), first, first.names, args, final)
        if final is not _NO_FINAL:
            raise self.error(first, "can't give argument to non-function "
                                    f"{self.tpl.source[first.pos:first.end]}")
        if t is _Nil:
            raise self.error(first, "nil is not a command")
        return self.arg(dot, first)

    def arg(self, dot: Any, node: _Node) -> Any:
        t = type(node)
        if t is _Lit:
            return node.value
        if t is _Field:
            return self.chain(dot, dot, node, node.names, (), _NO_FINAL)
        if t is _Var:
            val = self.lookup(node.name)
            return self.chain(dot, val, node, node.names, (), _NO_FINAL) if node.names else val
        if t is _Dot:
            return dot
        if t is _Nil:
            return None
        if t is _Pipe:
            return self.commands(dot, node)
        if t is _Chain:
            return self.chain(dot, self.arg(dot, node.node), node, node.names, (), _NO_FINAL)
        if t is _Ident:
            cmd = _Cmd([node])
            cmd.pos, cmd.end = node.pos, node.end
            return self.call(dot, node, cmd, (), _NO_FINAL)
        raise self.error(node, "unexpected operand")  # pragma: no cover - parser guarantees

    def chain(self, dot: Any, recv: Any, node: _Node, names: list[str], args: Any, final: Any) -> Any:
        for name in names[:-1]:
            recv = self.field(dot, recv, name, node, (), _NO_FINAL)
            if recv is None and name in self.maps:
                recv = {}  # a nil Go map: any key of it is <no value>, not a nil pointer
        return self.field(dot, recv, names[-1], node, args, final)

    def field(self, dot: Any, recv: Any, name: str, node: _Node, args: Any, final: Any) -> Any:
        has_args = bool(args) or final is not _NO_FINAL
        if recv is _NO_VALUE:
            return _NO_VALUE
        if isinstance(recv, _HeaderRow):
            return recv.header(name, name)
        if isinstance(recv, _Header):
            return recv.row.header(f"{recv.path}.{name}", name)
        if isinstance(recv, dict):
            if has_args:
                raise self.error(node, f"{name} is not a method but has arguments")
            if name in recv:
                return recv[name]
            if id(recv) in self.structs:
                raise self.error(node, f"can't evaluate field {name}: no such field")
            return _NO_VALUE
        if recv is None:
            raise self.error(node, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(recv, (str, int, float, bool, list, tuple, bytes, set)) or name.startswith("_"):
            raise self.error(node, f"can't evaluate field {name} in type {_go_type(recv)}")
        try:
            attr = getattr(recv, name)
        except AttributeError:
            raise self.error(node, f"can't evaluate field {name} in type {type(recv).__name__}") from None
        if callable(attr) and not isinstance(attr, type):
            argv = [self.arg(dot, a) for a in args] + ([] if final is _NO_FINAL else [final])
            try:
                return attr(*argv)
            except TemplateError:
                raise
            except Exception as exc:  # noqa: BLE001 - a user's method failing is a template error
                raise self.error(node, f"error calling {name}: {exc}") from None
        if has_args:
            raise self.error(node, f"{name} is not a method but has arguments")
        return attr

    def call(self, dot: Any, ident: _Ident, cmd: _Cmd, args: Any, final: Any) -> Any:
        name = ident.name
        fn, least, most = _FUNCS[name]
        n = len(args) + (final is not _NO_FINAL)
        if n < least or (most is not None and n > most):
            want = f"at least {least}" if most is None else str(least)
            raise self.error(cmd, f"wrong number of args for {name}: want {want} got {n}")
        if name in ("and", "or"):  # short-circuit: the first deciding value is the result
            val: Any = None
            for a in args:
                val = self.arg(dot, a)
                if _truth(val) != (name == "and"):
                    return val
            return final if final is not _NO_FINAL else val
        argv = [self.arg(dot, a) for a in args]
        if final is not _NO_FINAL:
            argv.append(final)
        argv = [None if a is _NO_VALUE else a for a in argv]
        header = next((a for a in argv if isinstance(a, _Header)), None) if self.header else None
        if header is not None and name in _STRUCTURAL:
            if name == "index" and argv[0] is header and argv[1:] and all(isinstance(k, str) for k in argv[1:]):
                for key in argv[1:]:  # `index .Labels "app"` titles its column APP
                    header = header.row.header(f"{header.path}.{key}", key)
            return header
        try:
            return fn(*argv)
        except _CallError as exc:
            if header is not None:  # header row: a function that cannot take a title shows it
                return header
            raise self.error(cmd, str(exc)) from None


def _struct_ids(root: Any, maps: frozenset[str]) -> set[int]:
    """The dicts of `root` that stand for Podman's structs: all but the values of the `maps` keys
    (Go maps: a missing key there is `<no value>`, not an error) and what is inside those."""
    if not maps:
        return set()
    ids: set[int] = set()
    todo = [root]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            ids.add(id(value))
            todo += [v for k, v in value.items() if k not in maps]
        elif isinstance(value, list):
            todo += value
    return ids


# -- public API ----------------------------------------------------------------------------------
class Template:
    """A parsed format; `render(data)` runs it with `.` and `$` set to data."""

    __slots__ = ("source", "name", "_root", "_defs")

    def __init__(self, source: str, name: str, root: list[_Node], defs: dict[str, list[_Node]]):
        self.source, self.name, self._root, self._defs = source, name, root, defs

    def render(self, data: Any, *, strict: "bool | Collection[str]" = False) -> str:
        """Execute against data. With strict, a key missing from data itself (a Podman struct
        field) is an error instead of `<no value>`; nested dicts stay lenient Go maps. With a
        collection of names, every nested dict is a struct too, but for the values of those keys."""
        ex = _Exec(self, data, strict)
        try:
            ex.walk(data, self._root)
        except (_Break, _Continue):  # pragma: no cover - parser rejects them outside range
            pass
        except RecursionError:
            raise TemplateError(f"template: {self.name}: format nests too deeply") from None
        return "".join(ex.out)

    def render_header(self, headers: dict[str, str] | None = None) -> str:
        """The header row: each field renders as its column title (overridable by field name)."""
        return self.render(_HeaderRow(headers or {}))

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


@lru_cache(maxsize=128)
def compile_template(text: str, name: str = "format", *, escapes: bool = True) -> Template:
    """Parse a format once. With escapes, a typed `\\t` or `\\n` in the text between actions
    becomes a tab or newline first, as Podman does for formats given on the command line."""
    if not isinstance(text, str):
        raise TemplateError(f"template: {name}: format must be a string, not {type(text).__name__}")
    root, defs = _Parser(text, name, escapes).parse()
    return Template(text, name, root, defs)


def render(text: str, data: Any, *, strict: "bool | Collection[str]" = False) -> str:
    """Render one format against one item (`inspect --format`, `info --format`); no newline added."""
    return compile_template(text).render(data, strict=strict)


def is_table(fmt: str) -> bool:
    """Whether a format asks for a table: Podman's `table ` prefix (or bare `table`)."""
    return fmt.startswith("table ") or fmt.strip() == "table"


def _row_format(fmt: str) -> str:
    body = fmt[len("table "):] if fmt.startswith("table ") else fmt
    if not body.endswith("\n") and not body.endswith("\\n"):
        body += "\n"
    return body


def render_table(fmt: str, rows: list, headers: dict[str, str] | None = None, *,
                 noheading: bool = False, strict: bool = True) -> str:
    """A header row then one line per row, aligned as Podman's tabwriter does. `headers` maps
    field names to titles (e.g. {"ID": "CONTAINER ID"}); other titles come from field names."""
    if fmt.strip() == "table":
        raise TemplateError("template: format: 'table' needs column fields after it, e.g. 'table {{.ID}}'")
    tpl = compile_template(_row_format(fmt))
    tw = TabWriter()
    if not noheading:
        tw.write(tpl.render_header(headers))
    for row in rows:
        tw.write(tpl.render(row, strict=strict))
    return tw.flush()


def render_rows(fmt: str, rows: list, *, strict: bool = True) -> str:
    """One rendered line per row, each ending in a newline; tab-separated cells are aligned
    as Podman's output writer does. A `table ` format is passed to render_table."""
    if is_table(fmt):
        return render_table(fmt, rows, strict=strict)
    tpl = compile_template(_row_format(fmt))
    tw = TabWriter()
    for row in rows:
        tw.write(tpl.render(row, strict=strict))
    return tw.flush()


class TabWriter:
    """Go's text/tabwriter for left-aligned text: tab-terminated cells line up in columns.

    Defaults are Podman's (minwidth 12, tabwidth 2, padding 2, space padding). The last cell
    of a line is not tab-terminated and is never padded; a column block ends at the first
    line without a cell in that column.
    """

    def __init__(self, minwidth: int = 12, tabwidth: int = 2, padding: int = 2, padchar: str = " ",
                 *, align_right: bool = False):
        if len(padchar) != 1:
            raise ValueError("padchar must be one character")
        self.minwidth, self.tabwidth, self.padding, self.padchar = minwidth, tabwidth, padding, padchar
        self.align_right = align_right and padchar != "\t"
        self._buf: list[str] = []

    def write(self, text: str) -> None:
        """Buffer text; nothing is aligned until flush()."""
        self._buf.append(text)

    def flush(self) -> str:
        """Format everything written since the last flush and return it."""
        text = "".join(self._buf)
        self._buf.clear()
        if not text:
            return ""
        lines = [line.split("\t") for line in text.split("\n")]
        widths: list[list[int]] = [[] for _ in lines]
        self._blocks(lines, widths, 0, len(lines), [])
        out = []
        for cells, ws in zip(lines, widths):
            parts = []
            for j, cell in enumerate(cells):
                if j < len(ws):
                    parts.append(self._cell(cell, ws[j]))
                else:
                    parts.append(cell)
            out.append("".join(parts))
        return "\n".join(out)

    def _blocks(self, lines: list[list[str]], widths: list[list[int]], start: int, stop: int,
                stack: list[int]) -> None:
        column = len(stack)
        i = start
        while i < stop:
            if column >= len(lines[i]) - 1:
                widths[i] = stack
                i += 1
                continue
            width, block = self.minwidth, i
            while i < stop and column < len(lines[i]) - 1:
                width = max(width, len(lines[i][column]) + self.padding)
                i += 1
            self._blocks(lines, widths, block, i, stack + [width])

    def _cell(self, text: str, width: int) -> str:
        if self.padchar == "\t":
            if self.tabwidth <= 0:
                return text
            cellw = -(-width // self.tabwidth) * self.tabwidth
            return text + "\t" * -(-(cellw - len(text)) // self.tabwidth)
        fill = self.padchar * max(width - len(text), 0)
        return fill + text if self.align_right else text + fill
