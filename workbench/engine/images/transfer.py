"""Pull and push: images between the local store and a registry, with short-name resolution,
platform selection, parallel verified blob transfers, progress events, login and logout."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import events
from ..errors import InvalidArgument, WorkbenchError
from ..records import NamedTuple
from ..storage.content import validate_digest
from . import auth, registries_conf
from . import reference as refs
from .mediatypes import DOCKER_CONFIG, DOCKER_MANIFEST, LAYER_TYPES, OCI_CONFIG, OCI_MANIFEST
from .registry import (
    AuthenticationError,
    Descriptor,
    Manifest,
    ManifestUnknown,
    Registry,
    RegistryError,
    parse_manifest,
)

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .store import Image

__all__ = [
    "AuthenticationError",
    "ManifestUnknown",
    "ProgressEvent",
    "RegistryError",
    "login",
    "logout",
    "pull",
    "push",
]

MAX_CONFIG_BYTES = 4 << 20
PARALLEL = 3
_CACHE_FILE = "blob-info-cache.json"
_CACHE_PER_LAYER = 8
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386"}
_PUSH_TYPES = {  # format -> (manifest, config, {compression: layer media type})
    "oci": (OCI_MANIFEST, OCI_CONFIG, {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                                       "none": "application/vnd.oci.image.layer.v1.tar"}),
    "v2s2": (DOCKER_MANIFEST, DOCKER_CONFIG, {"gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip"}),
}


class ProgressEvent(NamedTuple):
    """One step of a transfer. `kind`: "resolve" (manifest digest known), "blob" (bytes of a blob
    moved; `status` "skipped" or "mounted" when none had to), "manifest" (written/read), "done"."""

    kind: str
    digest: str = ""
    done_bytes: int = 0
    total_bytes: int = 0
    status: str = ""


Progress = Callable[[ProgressEvent], None]


# --------------------------------------------------------------------------- pull


def pull(rt: Runtime, reference: str, *, tls_verify: bool | None = None, auth_file: str | None = None,
         credentials: tuple[str, str] | None = None, platform: str | None = None,
         progress: Progress | None = None) -> Image:
    """Pull an image into the store, named by its full reference; short names are tried against
    registries.conf's aliases and unqualified-search registries in order. On any failure nothing
    of it is left in the store."""
    conf = registries_conf.load()
    report = _reporter(progress)
    candidates = _candidates(reference, conf)
    errors = []
    for ref in candidates:
        try:
            image = _pull_one(rt, ref, conf, tls_verify, auth_file, credentials, platform, report)
            events.image(rt.runroot, "pull", image.id, reference)
            return image
        except RegistryError as exc:
            if len(candidates) == 1:
                raise
            errors.append(f"{ref}: {exc}")
    raise RegistryError(f"pulling {reference}: every candidate failed: " + "; ".join(errors))


def _candidates(reference: str, conf: registries_conf.RegistriesConf) -> list[refs.Reference]:
    text = reference.removeprefix("docker://")
    ref = refs.parse(text)
    if ref.domain:
        return [refs.normalize(text)]
    suffix = (":" + ref.tag if ref.tag else "") + ("@" + ref.digest if ref.digest else "")
    if ref.path in conf.aliases:
        return [refs.normalize(conf.aliases[ref.path] + suffix)]
    if not conf.search:
        raise InvalidArgument(f'short-name "{text}" did not resolve to an alias and no unqualified-search '
                              f'registries are defined in "{conf.path}"')
    return [refs.normalize(text, registry) for registry in conf.search]


def _pull_one(rt: Runtime, ref: refs.Reference, conf: registries_conf.RegistriesConf, tls_verify: bool | None,
              auth_file: str | None, credentials: tuple[str, str] | None, platform: str | None,
              report: Progress) -> Image:
    """Pull `ref` from its mirrors in order, then from its (possibly rewritten) location."""
    entry = _entry(ref, conf)
    sources = entry.sources(ref.repository) if entry else [(ref.repository, False)]
    errors: list[str] = []
    for repository, insecure in sources:
        domain, _, path = repository.partition("/")
        source = refs.Reference(domain, path, ref.tag, ref.digest)
        try:
            registry = _client(source, insecure if tls_verify is None else not tls_verify, auth_file, credentials)
            return _pull_from(rt, ref, source, registry, platform, report)
        except RegistryError as exc:
            if len(sources) == 1:
                raise
            errors.append(f"{repository}: {exc}")
    raise RegistryError(f"pulling {ref}: every source failed: " + "; ".join(errors))


def _pull_from(rt: Runtime, ref: refs.Reference, source: refs.Reference, registry: Registry, platform: str | None,
               report: Progress) -> Image:
    """Pull the image named `ref` from `source` (the same repository, or a mirror of it)."""
    repo = source.path
    manifest, digest = _fetch_manifest(registry, repo, ref.digest or ref.tag, ref.digest, None)
    report(ProgressEvent("resolve", digest))
    if manifest.is_index:  # the image keeps the index digest (what a pull by digest names), as Docker does
        chosen = _choose(manifest, platform)
        manifest, _ = _fetch_manifest(registry, repo, chosen.digest, chosen.digest, chosen)
    config_bytes = _fetch_config(registry, repo, manifest)
    diff_ids = _diff_ids(config_bytes, len(manifest.layers))
    for layer in manifest.layers:
        if LAYER_TYPES[layer.media_type] == "zstd" and not _which("zstd"):
            raise WorkbenchError(f"layer {layer.digest} is zstd-compressed and no zstd decoder is installed "
                                 "(apt install zstd)")
    store = rt.image_store
    new_layers = _fetch_layers(rt, registry, repo, list(zip(manifest.layers, diff_ids)), report)
    try:
        report(ProgressEvent("manifest", digest))
        names = [str(refs.Reference(ref.domain, ref.path, ref.tag))] if ref.tag else []
        image = store.register(config_bytes, names, digest=digest, manifest_type=manifest.media_type)
    except BaseException:
        store.gc_layers(new_layers)
        raise
    _cache_add(rt, [(d, layer.digest, layer.size, LAYER_TYPES[layer.media_type], source.repository)
                    for layer, d in zip(manifest.layers, diff_ids)])
    report(ProgressEvent("done", "sha256:" + image.id))
    return image


def _fetch_manifest(registry: Registry, repo: str, reference: str, expected: str,
                    descriptor: Descriptor | None) -> tuple[Manifest, str]:
    """A parsed manifest and its digest; checked against the digest (and descriptor) asked for."""
    data, content_type = registry.get_manifest(repo, reference)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if expected and digest != expected:
        raise RegistryError(f"manifest {reference} in {registry.host}/{repo} has digest {digest}: refusing it")
    manifest = parse_manifest(data, content_type)
    if descriptor is not None and (len(data) != descriptor.size or manifest.is_index or (
            descriptor.media_type and descriptor.media_type != manifest.media_type)):
        raise RegistryError(f"manifest {digest} does not match its entry in the image index")
    return manifest, digest


def _choose(index: Manifest, platform: str | None) -> Descriptor:
    """The index entry for `platform` (`os/arch[/variant]`, default this machine's)."""
    text = platform or f"linux/{_ARCH.get(os.uname().machine, os.uname().machine)}"
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise InvalidArgument(f'invalid platform "{text}": expected OS/ARCH[/VARIANT]')
    want_os, arch, variant = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    for entry in index.manifests:
        p = entry.platform or {}
        if p.get("os") == want_os and p.get("architecture") == arch and (not variant or p.get("variant") == variant):
            return entry
    raise RegistryError(f'no image found in image index for architecture {arch}, variant "{variant}", OS {want_os}')


def _fetch_config(registry: Registry, repo: str, manifest: Manifest) -> bytes:
    desc = manifest.config
    assert desc is not None
    if desc.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
        raise RegistryError(f"not a container image: config type {desc.media_type!r}")
    if desc.size > MAX_CONFIG_BYTES:
        raise RegistryError(f"image config is too large ({desc.size} bytes, the limit is {MAX_CONFIG_BYTES})")
    with registry.open_blob(repo, desc.digest, desc.size) as reader:
        return b"".join(iter(lambda: reader.read(1 << 20), b""))


def _diff_ids(config_bytes: bytes, layers: int) -> list[str]:
    try:
        diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
        if not isinstance(diff_ids, list):
            raise TypeError("rootfs.diff_ids is not a list")
        for diff_id in diff_ids:
            validate_digest(diff_id)
    except (ValueError, KeyError, TypeError, InvalidArgument) as exc:
        raise RegistryError(f"invalid image config: {exc}") from None
    if len(diff_ids) != layers:
        raise RegistryError(f"image config lists {len(diff_ids)} layers, the manifest {layers}")
    return diff_ids


def _fetch_layers(rt: Runtime, registry: Registry, repo: str, layers: list[tuple[Descriptor, str]],
                  report: Progress) -> list[str]:
    """Store the missing layers in manifest order, each blob verified: the first is unpacked as it
    downloads, the others download in parallel meanwhile (into the content store, deleted once
    unpacked). Returns the layer IDs added; on failure removes them and every downloaded blob."""
    store, content = rt.image_store, rt.content
    todo: list[tuple[Descriptor, str]] = []
    for desc, diff_id in layers:
        if store.has_layer(diff_id) or any(diff_id == d for _, d in todo):
            report(ProgressEvent("blob", desc.digest, desc.size, desc.size, "skipped"))
        else:
            todo.append((desc, diff_id))
    cancel = threading.Event()

    def open_blob(desc: Descriptor):
        report(ProgressEvent("blob", desc.digest, 0, desc.size))
        return registry.open_blob(repo, desc.digest, desc.size, cancel=cancel,
                                  progress=lambda n: report(ProgressEvent("blob", desc.digest, n, desc.size)))

    def download(desc: Descriptor) -> bool:
        """Fetch one blob into the content store; True if this call created it."""
        if content.exists(desc.digest):
            report(ProgressEvent("blob", desc.digest, desc.size, desc.size))
            return False
        with open_blob(desc) as reader:
            content.put_stream(reader)
        return True

    added: list[str] = []
    pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="pull")
    futures = [None] + [pool.submit(download, desc) for desc, _ in todo[1:]]
    done = 0
    try:
        for (desc, diff_id), future in zip(todo, futures):
            done += 1
            if future is None:
                with open_blob(desc) as reader:
                    store.put_layer(reader, diff_id=diff_id)  # type: ignore[arg-type]
                added.append(diff_id[7:])
                continue
            created = future.result()
            try:
                with open(content.path(desc.digest), "rb") as blob:
                    store.put_layer(blob, diff_id=diff_id)
                added.append(diff_id[7:])
            finally:
                if created:
                    content.delete(desc.digest)  # the layer keeps what it needs
    except BaseException:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for (desc, _), future in list(zip(todo, futures))[done:]:
            if future is not None and not future.cancelled() and future.exception() is None and future.result():
                content.delete(desc.digest)
        store.gc_layers(added)
        raise
    pool.shutdown()
    return added


# --------------------------------------------------------------------------- push


def push(rt: Runtime, image: str, destination: str | None = None, *, tls_verify: bool | None = None,
         auth_file: str | None = None, credentials: tuple[str, str] | None = None, format: str = "oci",
         progress: Progress | None = None) -> str:
    """Push a stored image (gzip layers, an OCI or Docker v2s2 manifest) to `destination`, by
    default its own name. Blobs the registry has are skipped, blobs it has in another repository
    are mounted. Returns the manifest digest."""
    if format not in _PUSH_TYPES:
        raise InvalidArgument(f'unsupported manifest format "{format}": use oci or v2s2')
    manifest_type, config_type, layer_types = _PUSH_TYPES[format]
    img = rt.image_store.get(image)
    ref = _destination(image, destination, img)
    registry = _connect(ref, registries_conf.load(), tls_verify, auth_file, credentials)
    report = _reporter(progress)
    config_bytes = rt.content.read("sha256:" + img.id)
    diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
    cache = _cache_read(rt)
    registry.ping()
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="push") as pool:
        pushed = list(pool.map(lambda d: _push_layer(rt, registry, ref, d, layer_types, cache.get(d, []), report),
                               diff_ids))
    config = Descriptor(config_type, "sha256:" + img.id, len(config_bytes))
    _push_blob(registry, ref.path, config, io.BytesIO(config_bytes), None, report)
    doc = {"schemaVersion": 2, "mediaType": manifest_type, "config": _json_descriptor(config),
           "layers": [_json_descriptor(desc) for desc, _ in pushed]}
    data = json.dumps(doc, separators=(",", ":")).encode()
    report(ProgressEvent("manifest", "sha256:" + hashlib.sha256(data).hexdigest()))
    digest = registry.put_manifest(ref.path, ref.tag or "latest", data, manifest_type)
    _cache_add(rt, [(d, desc.digest, desc.size, compression, ref.repository)
                    for d, (desc, compression) in zip(diff_ids, pushed)])
    report(ProgressEvent("done", digest))
    events.image(rt.runroot, "push", img.id, str(ref))
    return digest


def _destination(image: str, destination: str | None, img: Image) -> refs.Reference:
    text = destination or image
    if destination is None and img.id.startswith(image.removeprefix("sha256:")):
        if not img.names:
            raise InvalidArgument(f"image {image} has no name: give a destination to push it to")
        text = img.names[0]
    ref = refs.normalize(text.removeprefix("docker://"))
    if not ref.tag:
        raise InvalidArgument(f"cannot push to a digest reference {text!r}: give a tag")
    return ref


def _push_layer(rt: Runtime, registry: Registry, ref: refs.Reference, diff_id: str, layer_types: dict[str, str],
                known: list, report: Progress) -> tuple[Descriptor, str]:
    """Make one layer available in the destination repository: already there, mounted from
    another repository of the same registry, or gzip-compressed here and uploaded."""
    repo, location = ref.path, None
    for digest, size, compression, repository in _usable(known, ref, layer_types):
        desc = Descriptor(layer_types[compression], digest, size)
        if repository == ref.repository:
            if registry.has_blob(repo, digest):
                report(ProgressEvent("blob", digest, size, size, "skipped"))
                return desc, compression
        elif location is None:
            location = registry.mount_blob(repo, digest, repository.split("/", 1)[1])
            if location is None:
                report(ProgressEvent("blob", digest, size, size, "mounted"))
                return desc, compression
    import tempfile

    with tempfile.TemporaryFile(dir=rt.content.root) as tmp:
        digest, size = rt.image_store.write_gzipped_layer(diff_id, tmp)
        desc = Descriptor(layer_types["gzip"], digest, size)
        _push_blob(registry, repo, desc, tmp, location, report)
    return desc, "gzip"


def _push_blob(registry: Registry, repo: str, desc: Descriptor, stream: BinaryIO, location: str | None,
               report: Progress) -> None:
    if registry.has_blob(repo, desc.digest):
        report(ProgressEvent("blob", desc.digest, desc.size, desc.size, "skipped"))
        return
    stream.seek(0)
    report(ProgressEvent("blob", desc.digest, 0, desc.size))
    registry.upload_blob(repo, desc.digest, desc.size, stream, location=location,
                         progress=lambda n: report(ProgressEvent("blob", desc.digest, n, desc.size)))


def _json_descriptor(desc: Descriptor) -> dict[str, Any]:
    return {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}


# --------------------------------------------------------------------------- login, logout


def login(registry: str, username: str, password: str, *, auth_file: str | None = None,
          tls_verify: bool | None = None) -> None:
    """Check the credentials against the registry, then store them in the auth file (0600)."""
    if not username:
        raise InvalidArgument("login: a username is required")
    key = auth.normalize_key(registry)
    host = key.split("/", 1)[0]
    insecure = not tls_verify if tls_verify is not None else registries_conf.load().insecure(host)
    Registry(host, insecure=insecure, credentials=(username, password)).login()
    auth.store(key, username, password, auth_file)


def logout(registry: str | None, *, auth_file: str | None = None, all: bool = False) -> None:
    """Remove the stored credentials of `registry`, or of every registry with `all`."""
    if all:
        auth.remove(None, auth_file, all=True)
    elif not registry:
        raise InvalidArgument("logout: a registry must be given (or all=True)")
    elif not auth.remove(registry, auth_file):
        raise auth.NotLoggedIn(registry)


# --------------------------------------------------------------------------- helpers


def _connect(ref: refs.Reference, conf: registries_conf.RegistriesConf, tls_verify: bool | None,
             auth_file: str | None, credentials: tuple[str, str] | None) -> Registry:
    """A client for the reference's registry: TLS unless tls_verify=False or registries.conf says
    insecure; credentials given, else from the auth file, else none."""
    entry = _entry(ref, conf)
    insecure = not tls_verify if tls_verify is not None else bool(entry and entry.insecure)
    return _client(ref, insecure, auth_file, credentials)


def _entry(ref: refs.Reference, conf: registries_conf.RegistriesConf) -> registries_conf.RegistryEntry | None:
    """registries.conf's entry for the reference; a blocked one is an error."""
    entry = conf.find(ref.repository)
    if entry is not None and entry.blocked:
        raise RegistryError(f'registry {ref.domain} is blocked in "{conf.path}"')
    return entry


def _client(ref: refs.Reference, insecure: bool, auth_file: str | None,
            credentials: tuple[str, str] | None) -> Registry:
    return Registry(ref.domain, insecure=insecure, credentials=credentials or auth.lookup(ref.repository, auth_file))


def _reporter(progress: Progress | None) -> Progress:
    """The callback, called one event at a time (transfers run on several threads)."""
    if progress is None:
        return lambda event: None
    lock = threading.Lock()

    def report(event: ProgressEvent) -> None:
        with lock:
            progress(event)
    return report


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


# Blob info cache: where layers (by diff_id) are known to exist in compressed form, so a push can
# skip or mount them without compressing. A cache: lost or malformed, it is simply rebuilt.

def _cache_read(rt: Runtime) -> dict[str, list]:
    try:
        with open(os.path.join(rt.root, _CACHE_FILE), "rb") as f:
            data = json.loads(f.read(16 << 20))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cache_add(rt: Runtime, records: list[tuple[str, str, int, str, str]]) -> None:
    data = _cache_read(rt)
    for diff_id, digest, size, compression, repository in records:
        entries = [e for e in data.get(diff_id, []) if e[:1] != [digest] or e[3:] != [repository]]
        data[diff_id] = ([[digest, size, compression, repository]] + entries)[:_CACHE_PER_LAYER]
    tmp = os.path.join(rt.root, f".{_CACHE_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        with open(tmp, "x") as f:
            json.dump(data, f)
        os.replace(tmp, os.path.join(rt.root, _CACHE_FILE))
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _usable(known: list, ref: refs.Reference, layer_types: dict[str, str]) -> list[tuple[str, int, str, str]]:
    """Cache entries on the registry of `ref` in a compression the manifest format allows, its
    own repository first."""
    out = []
    for entry in known:
        try:
            digest, size, compression, repository = entry
            validate_digest(digest)
            refs.parse(repository)
        except (ValueError, TypeError, InvalidArgument):
            continue
        if repository.split("/", 1)[0] == ref.domain and compression in layer_types and type(size) is int:
            out.append((digest, size, compression, repository))
    return sorted(out, key=lambda e: e[3] != ref.repository)
