"""tar-split: a layer's tar rebuilt byte for byte from its unpacked files and recorded headers."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from workbench.engine.storage.archive import WhiteoutMode, apply_tar
from workbench.engine.storage.tarsplit import DamagedLayer, Recorder, open_tar


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime, info.mode = kind, len(data), 1_700_000_000, 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def store(tmp_path: Path, data: bytes) -> tuple[Path, str, int]:
    """Apply `data` as a layer with a tar-split record; (layer dir, diff_id, tar size)."""
    layer = tmp_path / "layer"
    (layer / "diff").mkdir(parents=True)
    (layer / "attic").mkdir()
    attic = os.open(layer / "attic", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(layer / "tar-split", "wb") as out:
            result = apply_tar(io.BytesIO(data), layer / "diff", whiteouts=WhiteoutMode.OVERLAY,
                               record=Recorder(out, attic))
    finally:
        os.close(attic)
    return layer, result.diff_id, result.size


def rebuild(layer: Path, diff_id: str, size: int, chunk: int = 16 << 10) -> bytes:
    with open_tar(str(layer / "tar-split"), str(layer / "diff"), str(layer / "attic"), diff_id, size) as stream:
        parts = []
        while piece := stream.read(chunk):
            parts.append(piece)
    return b"".join(parts)


RICH = [
    entry("./", tarfile.DIRTYPE, mode=0o755),
    entry("etc/", tarfile.DIRTYPE),
    entry("etc/empty"),
    entry("etc/hosts", data=b"127.0.0.1 localhost\n"),
    entry("bin/", tarfile.DIRTYPE),
    entry("bin/big", data=os.urandom(3 << 20)),  # above the worker threads' small-file size
    entry("bin/link", tarfile.LNKTYPE, linkname="bin/big"),
    entry("bin/sym", tarfile.SYMTYPE, linkname="big"),
    entry("deep/" + "a-directory-name/" * 8 + "file", data=b"a long name needs a pax header"),
    entry("noted", data=b"x", pax_headers={"SCHILY.xattr.user.note": "kept in the pax header"}),
    entry("seventeen", data=b"17 bytes of data!"),
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 16 << 10, 1 << 22])
def test_a_layer_rebuilds_to_the_same_bytes(tmp_path, fmt, chunk):
    entries = RICH if fmt != tarfile.USTAR_FORMAT else [e for e in RICH if "deep/" not in e[0].name
                                                         and not e[0].pax_headers]
    data = make_tar(*entries, fmt=fmt) + b"\0" * 4096  # trailing zeros beyond the end marker count too
    layer, diff_id, size = store(tmp_path, data)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest() and size == len(data)
    assert rebuild(layer, diff_id, size, chunk) == data
    assert os.path.getsize(layer / "tar-split") < len(data) // 10  # the files' data is not copied


def test_compressed_input_rebuilds_to_its_uncompressed_tar(tmp_path):
    data = make_tar(*RICH)
    layer, diff_id, size = store(tmp_path, gzip.compress(data))
    assert rebuild(layer, diff_id, size) == data


def test_files_the_tar_itself_removes_are_kept_in_the_attic(tmp_path):
    data = make_tar(
        entry("dup", data=b"first version"), entry("dup", data=b"second version"),
        entry("gone", data=b"whited out later"), entry(".wh.gone"),
        entry("d/", tarfile.DIRTYPE), entry("d/inner", data=b"inside a dir replaced by a file"),
        entry("d", data=b"now a file"),
    )
    layer, diff_id, size = store(tmp_path, data)
    assert (layer / "diff" / "dup").read_bytes() == b"second version"
    assert len(os.listdir(layer / "attic")) == 3
    assert rebuild(layer, diff_id, size) == data


def test_a_changed_file_is_a_damaged_layer_not_a_wrong_tar(tmp_path):
    data = make_tar(*RICH)
    layer, diff_id, size = store(tmp_path, data)
    hosts = layer / "diff" / "etc" / "hosts"
    hosts.write_bytes(b"127.6.6.6 localhost\n")  # same size, other content
    with pytest.raises(DamagedLayer, match="rebuilt tar has digest"):
        rebuild(layer, diff_id, size)
    hosts.write_bytes(b"short")
    with pytest.raises(DamagedLayer, match="no longer the file"):
        rebuild(layer, diff_id, size)


def test_a_symlink_planted_at_a_referenced_path_is_not_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"seventeen bytes!!")
    layer, diff_id, size = store(tmp_path, make_tar(*RICH))
    os.unlink(layer / "diff" / "seventeen")
    os.symlink(secret, layer / "diff" / "seventeen")
    with pytest.raises(DamagedLayer, match="seventeen"):
        rebuild(layer, diff_id, size)


def test_a_truncated_record_is_a_damaged_layer(tmp_path):
    layer, diff_id, size = store(tmp_path, make_tar(*RICH))
    records = (layer / "tar-split").read_bytes()
    (layer / "tar-split").write_bytes(records[:-7])
    with pytest.raises(DamagedLayer, match="truncated"):
        rebuild(layer, diff_id, size)
