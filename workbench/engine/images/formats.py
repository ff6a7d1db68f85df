"""Image archives: docker-archive and oci-archive tarballs and OCI layout directories.

Saving is streaming and reproducible: entries sorted, owners 0, one fixed mtime, stored config
bytes as they are, so the same images give the same bytes anywhere. Loading treats the archive as
hostile: tar headers are only parsed (never extracted), every name is checked before use, JSON
documents are size-capped, and blobs reach the store only through the content store and
`put_layer`, checked against their digests, sizes and the config's diff_ids. Nothing is
registered unless every image of the archive passed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import events
from ..errors import InvalidArgument, WorkbenchError
from ..files import sweep_scratch, write_output
from ..progress import ByteProgress, Meter
from ..records import NamedTuple
from ..storage.archive import (
    ArchiveError,
    _TarReader,  # the guarded header parser (negative sizes, pax bombs, truncation)
    decompressed,
)
from ..storage.content import HashingReader, validate_digest
from . import reference as refs
from .mediatypes import DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from .registry import (
    Descriptor,
    Manifest,
    RegistryError,
    parse_manifest,
)
from .store import MAX_CONFIG_BYTES, MAX_LAYER_BYTES

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .store import Image
    from .transfer import Progress

__all__ = ["FORMATS", "ArchiveFormatError", "LoadLimits", "load", "save"]

FORMATS = ("docker-archive", "oci-archive", "oci-dir")
MAX_DOCUMENT_BYTES = 4 << 20  # manifest.json, index.json, oci-layout, manifests
REF_NAME = "org.opencontainers.image.ref.name"
_CONTAINERD_NAME = "io.containerd.image.name"  # preferred over REF_NAME, as Podman does
_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_HEX = re.compile(r"[0-9a-f]{64}")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
_MAX_NAME = 4096
_MAX_DEPTH = 32
_MAX_LINKS = 8
_CHUNK = 1 << 20
_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ArchiveFormatError(InvalidArgument):
    """An image archive or layout is malformed, hostile, or fails a digest or size check."""


@dataclass(frozen=True)
class LoadLimits:
    """Caps on an archive being loaded; lower them to test, raise them for huge images."""

    max_entries: int = 100_000  # tar members
    max_bytes: int = 256 << 30  # the whole (decompressed) archive: bounds the spool on disk
    max_layer_bytes: int = MAX_LAYER_BYTES  # one uncompressed layer: bounds a gzip bomb


# --------------------------------------------------------------------------- save


class _Entry(NamedTuple):
    """One file of an archive (a directory when the name ends in "/"): `data`, or what `open`
    returns: a stream and its size (`size`, known ahead for progress)."""

    name: str
    data: bytes = b""
    open: Callable[[], tuple[BinaryIO, int]] | None = None
    size: int = 0

    @property
    def length(self) -> int:
        return self.size if self.open else len(self.data)


def save(rt: Runtime, images: list[str], output: str | BinaryIO | None, *, format: str = "docker-archive",
         compress: bool = False, timestamp: int | None = None, progress: ByteProgress | None = None) -> None:
    """Write images as `format` to `output`: a file path, a binary stream, stdout when None, or a new
    directory path for oci-dir. Entries get mtime `timestamp`, else $SOURCE_DATE_EPOCH, else 0.
    `compress` gzips the layers of the OCI formats (they are plain tars otherwise). `progress`
    gets the bytes of the files written so far, out of their total."""
    if isinstance(images, str):
        images = [images]
    if format not in FORMATS:
        raise InvalidArgument(f'unsupported format "{format}": use one of {", ".join(FORMATS)}')
    if not images:
        raise InvalidArgument("no image to save: give at least one name or ID")
    if len(images) > 1 and format != "docker-archive":
        raise InvalidArgument(f"{format} holds a single image: use docker-archive to save several")
    if compress and format == "docker-archive":
        raise InvalidArgument("compress can only be set when the format is oci-archive or oci-dir")
    if format == "oci-dir" and not isinstance(output, (str, os.PathLike)):
        raise InvalidArgument("oci-dir needs a directory path as output")
    mtime = _mtime(timestamp)
    chosen = [_pick(rt, text) for text in images]
    sweep_scratch(rt.root, ".tmp-save-")
    with tempfile.TemporaryDirectory(dir=rt.root, prefix=f".tmp-save-{os.getpid()}-") as tmp:
        if format == "docker-archive":
            entries = _docker_entries(rt, chosen)
        else:
            entries = _oci_entries(rt, *chosen[0], compress=compress, tmp=tmp)
        meter = Meter(progress, sum(entry.length for entry in entries))
        if format == "oci-dir":
            _write_dir(os.fspath(output), entries, meter)  # type: ignore[arg-type]
        else:
            write_output(output, lambda out: _write_tar(entries, out, mtime, meter))
        meter.finish()
    for image, _ in chosen:
        events.image(rt.runroot, "save", image.id, os.fspath(output) if isinstance(output, (str, os.PathLike)) else "")


def _mtime(timestamp: int | None) -> int:
    if timestamp is None:
        text = os.environ.get("SOURCE_DATE_EPOCH", "")
        try:
            timestamp = int(text) if text else 0
        except ValueError:
            raise InvalidArgument(f"SOURCE_DATE_EPOCH={text!r} is not a number of seconds") from None
    if not 0 <= timestamp < 8 ** 11:
        raise InvalidArgument(f"timestamp {timestamp} is out of range for a tar archive")
    return timestamp


def _pick(rt: Runtime, text: str) -> tuple[Image, str | None]:
    """The image and the name it was asked by (None when asked by ID: the archive names it not)."""
    image_id, matched = rt.image_store._resolve(text)
    return rt.image_store.get(image_id), matched


def _docker_entries(rt: Runtime, chosen: list[tuple[Image, str | None]]) -> list[_Entry]:
    """Podman's docker-archive: `<layer diff_id>.tar`, `<image id>.json`, manifest.json, repositories."""
    files: dict[str, _Entry] = {}
    manifest: dict[str, dict[str, Any]] = {}
    repositories: dict[str, dict[str, str]] = {}
    for image, tag in chosen:
        config = rt.content.read("sha256:" + image.id)
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        entry = manifest.setdefault(image.id, {"Config": f"{image.id}.json", "RepoTags": [],
                                               "Layers": [f"{d[7:]}.tar" for d in diff_ids]})
        files[entry["Config"]] = _Entry(entry["Config"], config)
        for diff_id in diff_ids:
            files[f"{diff_id[7:]}.tar"] = _Entry(f"{diff_id[7:]}.tar", open=_layer_opener(rt, diff_id),
                                                 size=rt.image_store.layer_size(diff_id))
        if tag and tag not in entry["RepoTags"]:
            entry["RepoTags"].append(tag)
            ref = refs.parse(tag)
            repositories.setdefault(ref.repository, {})[ref.tag or "latest"] = _chain_id(diff_ids)[7:]
    files["manifest.json"] = _Entry("manifest.json", _compact(list(manifest.values())))
    files["repositories"] = _Entry("repositories", _compact(repositories))
    return sorted(files.values())


def _chain_id(diff_ids: list[str]) -> str:
    """The OCI ChainID of a layer stack (what `repositories` maps a tag to)."""
    chain = diff_ids[0]
    for diff_id in diff_ids[1:]:
        chain = _sha256(f"{chain} {diff_id}".encode())
    return chain


def _oci_entries(rt: Runtime, image: Image, tag: str | None, *, compress: bool, tmp: str) -> list[_Entry]:
    """An OCI image layout: oci-layout, index.json (ref.name = the name asked by), blobs/sha256/."""
    config = rt.content.read("sha256:" + image.id)
    blobs = {"sha256:" + image.id: _Entry(_blob_name("sha256:" + image.id), config)}
    layers = []
    for diff_id in json.loads(config)["rootfs"]["diff_ids"]:
        if compress:
            path = os.path.join(tmp, diff_id[7:] + ".gz")
            with open(path, "xb") as out:
                digest, size = rt.image_store.write_gzipped_layer(diff_id, out)
            opener = functools.partial(_open_file, path)
        else:
            digest, size, opener = diff_id, rt.image_store.layer_size(diff_id), _layer_opener(rt, diff_id)
        layers.append({"mediaType": _LAYER_GZIP if compress else _LAYER_TAR, "digest": digest, "size": size})
        blobs[digest] = _Entry(_blob_name(digest), open=opener, size=size)
    manifest = _compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                         "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + image.id, "size": len(config)},
                         "layers": layers})
    digest = _sha256(manifest)
    blobs[digest] = _Entry(_blob_name(digest), manifest)
    top: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}
    if tag:
        top["annotations"] = {REF_NAME: tag}
    index = _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]})
    return sorted([_Entry("blobs/"), _Entry("blobs/sha256/"), *blobs.values(), _Entry("index.json", index),
                   _Entry("oci-layout", _LAYOUT)])


def _layer_opener(rt: Runtime, diff_id: str) -> Callable[[], tuple[BinaryIO, int]]:
    return functools.partial(rt.image_store.open_layer_tar, diff_id)


def _open_file(path: str) -> tuple[BinaryIO, int]:
    f = open(path, "rb")
    return f, os.fstat(f.fileno()).st_size


def _write_tar(entries: list[_Entry], out: BinaryIO, mtime: int, meter: Meter) -> None:
    """Stream the entries as a tar: owner 0:0, no owner names, mode 0644/0755, mtime `mtime`."""
    from ..storage.tarwriter import TarStream

    with TarStream(out) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = mtime
            if entry.name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif entry.open:
                stream, info.size = entry.open()
                with stream:
                    tar.addfile(info, meter.reader(stream))
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
                meter.add(info.size)


def _write_dir(path: str, entries: list[_Entry], meter: Meter) -> None:
    """Create the OCI layout directory `path` (new or empty), complete or not at all."""
    if os.path.lexists(path) and (not os.path.isdir(path) or os.path.islink(path) or os.listdir(path)):
        raise InvalidArgument(f"{path} exists and is not an empty directory: choose a new path for the OCI layout")
    tmp = ""
    try:
        tmp = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-oci-")
        os.chmod(tmp, 0o755)
        for entry in entries:
            target = os.path.join(tmp, entry.name)
            if entry.name.endswith("/"):
                os.mkdir(target, 0o755)
            elif entry.open:
                stream, _ = entry.open()
                with stream, open(target, "xb") as out:
                    shutil.copyfileobj(meter.reader(stream), out, _CHUNK)
            else:
                with open(target, "xb") as f:
                    f.write(entry.data)
                meter.add(len(entry.data))
        if os.path.isdir(path):
            os.rmdir(path)
        os.rename(tmp, path)
    except OSError as exc:
        raise WorkbenchError(f"writing {path}: {exc.strerror or exc}") from None
    finally:
        if tmp and os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- load


def load(rt: Runtime, source: str | os.PathLike[str] | BinaryIO, *, progress: Progress | None = None,
         limits: LoadLimits | None = None) -> list[Image]:
    """Load every image of a docker-archive, an oci-archive (plain or gzip/zstd/xz/bzip2-compressed,
    a path or a stream) or an OCI layout directory. Names come from RepoTags or the ref.name
    annotation (short ones under localhost/). On any error nothing new is left in the store."""
    from .transfer import ProgressEvent

    limits = limits or LoadLimits()
    report = progress or (lambda event: None)
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
    try:
        with _open_files(rt, source, limits) as files:
            if files.has("index.json") and files.has("oci-layout"):
                plans = _oci_plans(files)
            elif files.has("manifest.json"):
                plans = _docker_plans(files)
            else:
                raise ArchiveFormatError("not an image archive: it has neither manifest.json (docker-archive) "
                                         "nor index.json and oci-layout (OCI)")
            loaded = _store(rt, files, plans, limits, lambda *args: report(ProgressEvent(*args)))
            events.image(rt.runroot, "loadfromarchive", "", label)
            return loaded
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveFormatError(f"loading {label}: truncated or corrupt archive: {exc}") from None
    except (ArchiveError, InvalidArgument, RegistryError) as exc:
        raise ArchiveFormatError(f"loading {label}: {exc}") from None
    except OSError as exc:
        raise WorkbenchError(f"loading {label}: {exc.strerror or exc}") from None


class _Plan(NamedTuple):
    """One image to load: config bytes, names, manifest digest, layers as (file, diff_id, descriptor)."""

    config: bytes
    names: list[str]
    digest: str
    layers: list[tuple[str, str, Descriptor | None]]
    manifest_type: str = OCI_MANIFEST


def _docker_plans(files: _Files) -> list[_Plan]:
    doc = _json(files.read("manifest.json", MAX_DOCUMENT_BYTES), "manifest.json")
    if not isinstance(doc, list) or not doc:
        raise ArchiveFormatError("manifest.json must list at least one image")
    plans = []
    for entry in doc:
        if not (isinstance(entry, dict) and isinstance(entry.get("Config"), str) and _strings(entry.get("Layers"))
                and _strings(entry.get("RepoTags") or [])):
            raise ArchiveFormatError("manifest.json: every image needs Config (a file name), Layers and RepoTags "
                                     "(lists of strings)")
        config_name = _clean(entry["Config"], "manifest.json config")
        config = files.read(config_name, MAX_CONFIG_BYTES)
        digest = _sha256(config)
        stem = posixpath.basename(config_name).removesuffix(".json")
        if _HEX.fullmatch(stem) and stem != digest[7:]:
            raise ArchiveFormatError(f"image config {config_name} has digest {digest}, not the one its name says: "
                                     "refusing it")
        layers = [_clean(name, "manifest.json layer") for name in entry["Layers"]]
        diff_ids = _diff_ids(config, len(layers))
        names = [refs.normalize_local(tag) for tag in entry.get("RepoTags") or []]
        plans.append(_Plan(config, names, "", [(n, d, None) for n, d in zip(layers, diff_ids)], DOCKER_MANIFEST))
    return plans


def _oci_plans(files: _Files) -> list[_Plan]:
    layout = _json(files.read("oci-layout", MAX_DOCUMENT_BYTES), "oci-layout")
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
        raise ArchiveFormatError('oci-layout: unsupported layout (expected imageLayoutVersion "1.0.0")')
    data = files.read("index.json", MAX_DOCUMENT_BYTES)
    index = parse_manifest(data, OCI_INDEX)
    if not index.is_index or not index.manifests:
        raise ArchiveFormatError("index.json lists no image")
    entries = json.loads(data)["manifests"]
    return [_oci_plan(files, desc, raw.get("annotations")) for desc, raw in zip(index.manifests, entries)]


def _oci_plan(files: _Files, desc: Descriptor, annotations: object) -> _Plan:
    top = desc.digest
    manifest = parse_manifest(_blob(files, desc, MAX_DOCUMENT_BYTES), desc.media_type)
    if manifest.is_index:  # a multi-platform image: this machine's platform
        desc = _this_platform(manifest)
        manifest = parse_manifest(_blob(files, desc, MAX_DOCUMENT_BYTES), desc.media_type)
        if manifest.is_index:
            raise ArchiveFormatError(f"{desc.digest}: nested image indexes are not supported")
    assert manifest.config is not None
    if manifest.config.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
        raise ArchiveFormatError(f"not a container image: config type {manifest.config.media_type!r}")
    config = _blob(files, manifest.config, MAX_CONFIG_BYTES)
    diff_ids = _diff_ids(config, len(manifest.layers))
    notes = annotations if isinstance(annotations, dict) else {}
    name = notes.get(_CONTAINERD_NAME) or notes.get(REF_NAME)
    names = [refs.normalize_local(name)] if isinstance(name, str) else []
    return _Plan(config, names, top, [(_blob_name(layer.digest), diff_id, layer)
                                      for layer, diff_id in zip(manifest.layers, diff_ids)], manifest.media_type)


def _this_platform(index: Manifest) -> Descriptor:
    arch = _ARCH.get(os.uname().machine, os.uname().machine)
    for entry in index.manifests:
        platform = entry.platform or {}
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            return entry
    raise ArchiveFormatError(f"the image index has no image for linux/{arch}")


def _blob(files: _Files, desc: Descriptor, limit: int) -> bytes:
    """A small blob (manifest, config), checked against its descriptor."""
    if desc.size > limit:
        raise ArchiveFormatError(f"blob {desc.digest} is {desc.size} bytes, more than the limit of {limit}")
    data = files.read(_blob_name(desc.digest), limit)
    if len(data) != desc.size or _sha256(data) != desc.digest:
        raise ArchiveFormatError(f"blob {desc.digest} does not match its digest or size: refusing it")
    return data


def _diff_ids(config: bytes, count: int) -> list[str]:
    doc = _json(config, "image config")
    try:
        diff_ids = doc["rootfs"]["diff_ids"]
        if not isinstance(diff_ids, list):
            raise TypeError
        for diff_id in diff_ids:
            validate_digest(diff_id)
    except (KeyError, TypeError, InvalidArgument):
        raise ArchiveFormatError("image config: rootfs.diff_ids must list the layers' sha256 digests") from None
    if len(diff_ids) != count or not count:
        raise ArchiveFormatError(f"image config lists {len(diff_ids)} layers, its manifest {count}")
    return diff_ids


def _store(rt: Runtime, files: _Files, plans: list[_Plan], limits: LoadLimits,
           report: Callable[..., None]) -> list[Image]:
    """Put every layer (verified), then register every image; undo all of it on any failure."""
    store = rt.image_store
    added: list[str] = []  # layer ids this load created
    registered: list[str] = []  # image ids this load created
    try:
        layers = {(name, diff_id): desc for plan in plans for name, diff_id, desc in plan.layers}
        sizes = {key: files.size(key[0]) for key in layers}  # every file is checked, a shared one once
        for (name, diff_id), desc in layers.items():  # the totals first, for one overall bar
            report("blob", desc.digest if desc else diff_id, 0, sizes[name, diff_id])
        for (name, diff_id), desc in layers.items():
            blob, size = desc.digest if desc else diff_id, sizes[name, diff_id]
            meter = Meter(lambda done, _, blob=blob, size=size: report("blob", blob, done, size), size)
            _put_layer(rt, files, name, diff_id, desc, limits.max_layer_bytes, added, meter)
            report("blob", blob, size, size)
        images = []
        for plan in plans:
            image_id = _sha256(plan.config)[7:]
            if not store.exists(image_id):
                registered.append(image_id)
            images.append(store.register(plan.config, plan.names, digest=plan.digest, manifest_type=plan.manifest_type))
            report("done", "sha256:" + image_id)
        return images
    except BaseException:
        for image_id in registered:
            try:
                store.remove(image_id, force=True, users=lambda _: [], remove_containers=lambda _: None)
            except WorkbenchError:
                pass
        store.gc_layers(added)
        raise


def _put_layer(rt: Runtime, files: _Files, name: str, diff_id: str, desc: Descriptor | None, max_bytes: int,
               added: list[str], meter: Meter) -> None:
    """Store one layer file, whose content must have the config's diff_id and (OCI) the manifest's
    digest and size. A layer it creates goes to `added`, for the caller to undo; `meter` counts the
    bytes read."""
    store = rt.image_store
    new = not store.has_layer(diff_id)
    stream, size = files.open(name)
    with stream:
        if desc is not None and size != desc.size:
            raise ArchiveFormatError(f"layer {desc.digest} is {size} bytes, its manifest says {desc.size}")
        hashed = HashingReader(meter.reader(stream))
        try:
            store.put_layer(hashed, diff_id=diff_id, max_bytes=max_bytes)  # type: ignore[arg-type]
        except InvalidArgument as exc:
            raise ArchiveFormatError(f"layer {name}: {exc}") from None
        if new:
            added.append(diff_id[7:])
        if desc is not None and (digest := hashed.digest()) != desc.digest:
            raise ArchiveFormatError(f"layer {desc.digest} has digest {digest}: refusing it")


# --------------------------------------------------------------------------- reading archives


class _Files:
    """The regular files of an archive or layout directory, by clean relative name."""

    def open(self, name: str) -> tuple[BinaryIO, int]:
        """A reader of the file's bytes and its size; ArchiveFormatError if there is no such file."""
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def size(self, name: str) -> int:
        stream, size = self.open(name)
        stream.close()
        return size

    def read(self, name: str, limit: int) -> bytes:
        """A whole file of at most `limit` bytes (JSON documents)."""
        stream, size = self.open(name)
        with stream:
            if size > limit:
                raise ArchiveFormatError(f"{name} is {size} bytes, more than the limit of {limit}")
            return stream.read(size)


class _Member(NamedTuple):
    size: int
    offset: int = -1  # in the archive file, read in place
    path: str = ""  # spooled copy


class _TarFiles(_Files):
    """An archive's members, headers parsed once: read in place from a plain regular file, else
    (compressed, a pipe, a stream) spooled to a private directory under the content store."""

    def __init__(self, raw: BinaryIO, spool_root: str, limits: LoadLimits, *, in_place: bool):
        self._raw = raw
        self._members: dict[str, _Member] = {}
        self._links: dict[str, str] = {}
        self._spool = ""
        source = decompressed(raw, limits.max_bytes)
        try:
            if in_place and source.compression == "none":
                raw.seek(0)
                tf = _TarReader.open(fileobj=raw, mode="r:", encoding="utf-8", errors="surrogateescape")
            else:
                sweep_scratch(spool_root, ".tmp-load-")
                self._spool = tempfile.mkdtemp(dir=spool_root, prefix=f".tmp-load-{os.getpid()}-")
                tf = _TarReader.open(fileobj=source, mode="r|", encoding="utf-8", errors="surrogateescape")
            with tf:
                self._scan(tf, limits)
        except BaseException:
            self.close()
            raise
        finally:
            source.close()

    def _scan(self, tf: _TarReader, limits: LoadLimits) -> None:
        count = 0
        while True:
            tf.meta_chain = 0
            member = tf.next()
            tf.members.clear()  # type: ignore[attr-defined]
            if member is None:
                return
            count += 1
            if count > limits.max_entries:
                raise ArchiveFormatError(f"the archive has more than {limits.max_entries} entries")
            name = _clean(member.name, "archive member", allow_root=member.isdir())
            if member.isdir():
                continue
            if name in self._members or name in self._links:
                raise ArchiveFormatError(f"the archive has two entries named {name!r}")
            if member.isreg():
                self._members[name] = self._spool_member(tf, member, count) if self._spool else \
                    _Member(member.size, member.offset_data)
            elif member.issym():
                self._links[name] = _clean(posixpath.join(posixpath.dirname(name), member.linkname),
                                           f"symlink {name!r} target")
            elif member.islnk():
                self._links[name] = _clean(member.linkname, f"hardlink {name!r} target")

    def _spool_member(self, tf: _TarReader, member: tarfile.TarInfo, count: int) -> _Member:
        path = os.path.join(self._spool, str(count))
        src = tf.extractfile(member)
        assert src is not None
        copied = 0
        with open(path, "xb") as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                copied += len(chunk)
        if copied != member.size:
            raise ArchiveFormatError(f"{member.name!r}: unexpected end of data (truncated archive)")
        return _Member(member.size, path=path)

    def _resolve(self, name: str) -> str:
        for _ in range(_MAX_LINKS):
            if name not in self._links:
                return name
            name = self._links[name]
        raise ArchiveFormatError(f"{name!r}: too many levels of links")

    def has(self, name: str) -> bool:
        return self._resolve(name) in self._members

    def open(self, name: str) -> tuple[BinaryIO, int]:
        member = self._members.get(self._resolve(name))
        if member is None:
            raise ArchiveFormatError(f"the archive has no file {name!r}")
        if member.path:
            return open(member.path, "rb"), member.size
        return _Window(self._raw.fileno(), member.offset, member.size), member.size  # type: ignore[return-value]

    def close(self) -> None:
        if self._spool:
            shutil.rmtree(self._spool, ignore_errors=True)


class _DirFiles(_Files):
    """An OCI layout directory: files opened below it without following any symlink."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def open(self, name: str) -> tuple[BinaryIO, int]:
        *dirs, leaf = name.split("/")
        fd = self._fd
        try:
            for part in dirs:
                parent, fd = fd, os.open(part, _DIR_NOFOLLOW, dir_fd=fd)
                if parent != self._fd:
                    os.close(parent)
            file_fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            raise ArchiveFormatError(f"the layout has no file {name!r}") from None
        except OSError as exc:
            raise ArchiveFormatError(f"{name}: {exc.strerror} (symlinks are not followed)") from None
        finally:
            if fd != self._fd:
                os.close(fd)
        st = os.fstat(file_fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(file_fd)
            raise ArchiveFormatError(f"{name} is not a regular file")
        return _Window(file_fd, 0, st.st_size, owned=True), st.st_size  # type: ignore[return-value]

    def has(self, name: str) -> bool:
        try:
            self.open(name)[0].close()
            return True
        except ArchiveFormatError:
            return False

    def close(self) -> None:
        os.close(self._fd)


class _Window(io.RawIOBase):
    """`size` bytes at `offset` of a file descriptor, read with pread; short data is an error."""

    def __init__(self, fd: int, offset: int, size: int, *, owned: bool = False):
        self._fd, self._pos, self._left, self._owned = fd, offset, size, owned

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._left)
        if want == 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        if not data:
            raise ArchiveFormatError("unexpected end of data: the archive is truncated")
        buffer[:len(data)] = data
        self._pos += len(data)
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if self._owned and not self.closed:
            os.close(self._fd)
        super().close()


@contextmanager
def _open_files(rt: Runtime, source: str | os.PathLike[str] | BinaryIO, limits: LoadLimits) -> Iterator[_Files]:
    with ExitStack() as stack:
        files: _Files
        if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
            files = _DirFiles(os.fspath(source))
        elif isinstance(source, (str, os.PathLike)):
            raw = stack.enter_context(open(source, "rb"))
            files = _TarFiles(raw, rt.content.root, limits, in_place=stat.S_ISREG(os.fstat(raw.fileno()).st_mode))
        else:
            files = _TarFiles(source, rt.content.root, limits, in_place=False)
        stack.callback(files.close)
        yield files


# --------------------------------------------------------------------------- helpers


def _clean(name: object, what: str, *, allow_root: bool = False) -> str:
    """A relative archive path with "." and ".." resolved; absolute paths and escapes are refused."""
    if not isinstance(name, str) or "\0" in name or len(name) > _MAX_NAME:
        raise ArchiveFormatError(f"{what} {str(name)[:80]!r} is not a valid file name")
    if name.startswith("/"):
        raise ArchiveFormatError(f"{what} {name!r} is an absolute path: refusing it")
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if not parts:
                raise ArchiveFormatError(f"{what} {name!r} points outside the archive: refusing it")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    if len(parts) > _MAX_DEPTH:
        raise ArchiveFormatError(f"{what} {name[:80]!r}... is deeper than {_MAX_DEPTH} directories")
    if not parts and not allow_root:
        raise ArchiveFormatError(f"{what} {name!r} names no file")
    return "/".join(parts)


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + validate_digest(digest)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ArchiveFormatError(f"{what} is not valid JSON: {exc}") from None


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _compact(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
