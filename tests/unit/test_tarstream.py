"""archive._TarStream reads what tarfile's stream reader (with the same guards) reads: the same
members, fields, offsets and data, on archives of every header kind, hand-made orderings of
extended headers included; and it refuses what the guards refuse."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from workbench.engine.storage import archive
from workbench.engine.storage.archive import ArchiveError

FIELDS = ("name", "linkname", "size", "mode", "uid", "gid", "mtime", "type", "uname", "gname", "devmajor",
          "devminor", "pax_headers", "offset", "offset_data")


def _by_tarfile(data: bytes) -> list[tuple]:
    tf = archive._TarReader.open(fileobj=io.BytesIO(data), mode="r|", encoding="utf-8", errors="surrogateescape")
    out = []
    while True:
        tf.meta_chain = 0
        m = tf.next()
        tf.members.clear()
        if m is None:
            return out
        body = tf.extractfile(m).read() if m.isreg() else None
        out.append((*(getattr(m, f) for f in FIELDS), body))


def _by_stream(data: bytes) -> list[tuple]:
    stream = archive._TarStream(archive._Source(io.BytesIO(data), 1 << 40))
    out = []
    while (m := stream.next()) is not None:
        body = b"".join(bytes(piece) for piece in stream.data()) if m.isreg() else None
        out.append((*(getattr(m, f) for f in FIELDS), body))
    return out


def _tar(entries, fmt=tarfile.PAX_FORMAT, pax_headers=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers or {}) as tf:
        for info, body in entries:
            tf.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def _entry(name, type_=tarfile.REGTYPE, body=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = type_, 1_600_000_000, 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    if type_ == tarfile.REGTYPE:
        info.size = len(body)
        return info, body
    return info, None


def _mixed():
    long_dir = "d" * 60 + "/" + "e" * 60
    return [
        _entry("dir/", tarfile.DIRTYPE, mode=0o755),
        _entry("dir/empty"),
        *(_entry(f"dir/size-{n}", body=os.urandom(n)) for n in (1, 511, 512, 513, 10240, 10241)),
        _entry("big", body=os.urandom((1 << 20) * 2 + 777)),  # across the source's 1 MiB chunks
        _entry(long_dir + "/" + "f" * 90, body=b"long name"),
        _entry("link", tarfile.SYMTYPE, linkname="t" * 150),
        _entry("hard", tarfile.LNKTYPE, linkname="dir/size-1"),
        _entry("fifo", tarfile.FIFOTYPE),
        _entry("chr", tarfile.CHRTYPE, devmajor=1, devminor=3),
        _entry("owned", body=b"x", uid=1 << 21, gid=70000, uname="someone", gname="grp"),
        _entry("n\u00e9e-\u6587\u5b57", body=b"utf-8 name"),
    ]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_formats_read_alike(fmt):
    entries = _mixed() if fmt != tarfile.USTAR_FORMAT else [e for e in _mixed()
                                                           if len(e[0].name) < 100 and len(e[0].linkname) < 100
                                                           and e[0].uid < 1 << 21]
    data = _tar(entries, fmt)
    assert _by_stream(data) == _by_tarfile(data)
    assert len(_by_stream(data)) == len(entries)


def test_pax_records_global_headers_and_xattrs_read_alike():
    xattr = {"SCHILY.xattr.user.note": "v", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
    entries = [_entry("a", body=b"1", pax_headers=xattr),
               _entry("b", body=b"22", pax_headers={"mtime": "1600000000.123456789", "comment": "c"}),
               _entry("c", tarfile.DIRTYPE, pax_headers={"path": "renamed/"})]
    data = _tar(entries, pax_headers={"comment": "global", "uname": "g"})
    ours = _by_stream(data)
    assert ours == _by_tarfile(data)
    assert ours[0][FIELDS.index("pax_headers")]["SCHILY.xattr.user.note"] == "v"
    assert ours[2][0] == "renamed"


# -- hand-made archives: header orderings tarfile's writer does not produce


def _header(name: bytes, type_: bytes, size: int = 0, linkname: bytes = b"") -> bytes:
    block = bytearray(512)
    block[0:len(name)] = name
    for start, width, value in ((100, 8, 0o644), (108, 8, 0), (116, 8, 0), (124, 12, size), (136, 12, 1_600_000_000)):
        block[start:start + width] = b"%0*o\0" % (width - 1, value)
    block[156:157] = type_
    block[157:157 + len(linkname)] = linkname
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _blocks(payload: bytes) -> bytes:
    return payload + b"\0" * (-len(payload) % 512)


def _pax(records: dict[str, str]) -> bytes:
    """pax records: each "<length> <key>=<value>\\n", the length counting its own digits."""
    body = b""
    for key, value in records.items():
        line = f" {key}={value}\n".encode()
        length = len(line) + len(str(len(line)))
        length = len(line) + len(str(length))
        body += str(length).encode() + line
    return body


def _member(meta: list[tuple[bytes, bytes]], name: bytes, type_=b"0", body=b"", linkname=b"") -> bytes:
    out = b""
    for kind, payload in meta:
        out += _header(b"././@meta", kind, len(payload)) + _blocks(payload)
    return out + _header(name, type_, len(body), linkname) + _blocks(body)


END = b"\0" * 1024


@pytest.mark.parametrize("meta", [
    [(b"x", _pax({"path": "from-pax"})), (b"L", b"from-gnu\0")],  # the first header wins, as in tarfile
    [(b"L", b"from-gnu\0"), (b"x", _pax({"path": "from-pax"}))],
    [(b"K", b"link-gnu\0"), (b"x", _pax({"linkpath": "link-pax", "size": "3"}))],
    [(b"g", _pax({"uname": "global"})), (b"x", _pax({"uid": "7"}))],
    [(b"x", _pax({"uid": "7"})), (b"g", _pax({"uname": "global"}))],
])
def test_extended_header_orderings_read_alike(meta):
    data = _member(meta, b"plain", body=b"abc") + _member([], b"next", body=b"zz") + END
    assert _by_stream(data) == _by_tarfile(data)


def test_data_of_special_and_unknown_types_is_treated_as_tarfile_does():
    # a directory's size field is ignored (no data follows); an unknown type's data is skipped
    data = (_header(b"dir", b"5", 512) + _member([], b"unknown", b"Z", body=b"q" * 700)
            + _member([], b"after", body=b"ok") + END)
    ours = _by_stream(data)
    assert ours == _by_tarfile(data)
    assert [m[0] for m in ours] == ["dir", "unknown", "after"]


def test_unread_data_is_skipped():
    data = _member([], b"first", body=b"a" * 5000) + _member([], b"second", body=b"b") + END
    stream = archive._TarStream(archive._Source(io.BytesIO(data), 1 << 40))
    assert stream.next().name == "first"
    second = stream.next()  # first's data never read
    assert second.name == "second" and b"".join(stream.data()) == b"b"
    assert stream.next() is None


@pytest.mark.parametrize("data, message", [
    (_member([], b"cut", body=b"x" * 2000)[:1200], "unexpected end of data"),
    (_header(b"half", b"0", 10)[:300], "truncated or corrupt tar header"),
    (b"", "truncated or corrupt tar header at offset 0"),
    (_header(b"bad", b"0")[:148] + b"0000000\0" + _header(b"bad", b"0")[156:] + END, "bad checksum"),
    (_member([(b"x", _pax({"size": "-5"}))], b"neg") + END, "negative size"),
    (_member([(b"x", _pax({"GNU.sparse.map": "0,1"}))], b"sparse") + END, "sparse files are not supported"),
    (_header(b"sparse", b"S") + END, "sparse files are not supported"),
    (b"".join(_header(b"././@LongLink", b"L", 4) + _blocks(b"abc\0") for _ in range(17)) + END, "chained"),
    (_header(b"huge", b"x", 2 << 20) + END, "exceeds"),
    (_header(b"only-meta", b"L", 4) + _blocks(b"abc\0") + END, "missing header after the extended header"),
    (_header(b"only-global", b"g", 16) + _blocks(b"16 uname=global\n") + END, "missing header after"),
    (_header(b"short-meta", b"x", 600) + b"30 path=aaaaaaaaaaaaaaaaaaaaa\n", "truncated extended header"),
])
def test_hostile_headers_are_refused(data, message):
    with pytest.raises(ArchiveError, match=message):
        _by_stream(data)


def test_numbers_in_base_256_read_alike():
    info, body = _entry("b256", body=b"x", uid=1 << 30)
    data = _tar([(info, body)], tarfile.GNU_FORMAT)  # GNU writes a large uid in base-256
    assert data[108] & 0x80
    assert _by_stream(data) == _by_tarfile(data)
