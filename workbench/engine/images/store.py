"""Image store: image records and names in the DB, configs and layer tars in the content store."""

from __future__ import annotations

import datetime
import json
import os
import time

from .. import logger
from ..db import Database
from ..errors import ImageInUse, InvalidArgument, NoSuchImage
from ..progress import ByteProgress, Meter
from ..records import NamedTuple
from ..storage.content import ContentStore, HashingReader, validate_digest
from ..storage.layers import LayerStore
from . import reference as refs
from .mediatypes import OCI_MANIFEST

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable

log = logger.get(__name__)

INCOMING = "incoming-"  # layers being unpacked: layers/incoming-<pid>-<random>

#: Caps on untrusted input: one uncompressed layer, one image config.
MAX_LAYER_BYTES = 64 << 30
MAX_CONFIG_BYTES = 4 << 20


def rfc3339(ts: float) -> str:
    """UTC time as Go's RFC3339Nano prints it (no trailing zeros in the fraction), so that a config
    re-encoded by Go tools (skopeo, Podman converting to OCI) keeps its bytes and its digest."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


class Image(NamedTuple):
    """One image: its OCI config, its layers (bottom first) and its names."""

    id: str
    names: list[str]
    config: dict[str, Any]
    layers: list[str]
    size: int
    created: float
    digest: str = ""
    history: list[dict[str, Any]] = []  # never mutated: NamedTuple fields are read-only
    manifest_type: str = OCI_MANIFEST  # of the manifest it came with (OCI when made here)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def container_config(self) -> dict[str, Any]:
        """The `config` part of the OCI image config (Cmd, Entrypoint, Env, ...)."""
        return self.config.get("config") or {}

    def inspect(self) -> dict[str, Any]:
        """Podman-shaped `image inspect` data."""
        cfg = self.container_config
        return {
            "Id": self.id,
            "Digest": self.digest,
            "RepoTags": list(self.names),
            "RepoDigests": [f"{n.rsplit(':', 1)[0]}@{self.digest}" for n in self.names if self.digest],
            "Parent": "",
            "Comment": self.config.get("comment", ""),
            "Created": self.config.get("created", rfc3339(self.created)),
            "Config": cfg,
            "Version": "",
            "Author": self.config.get("author", ""),
            "Architecture": self.config.get("architecture", ""),
            "Os": self.config.get("os", "linux"),
            "Size": self.size,
            "VirtualSize": self.size,
            "GraphDriver": {"Name": "overlay", "Data": {}},
            "RootFS": {"Type": "layers", "Layers": list(self.config.get("rootfs", {}).get("diff_ids", []))},
            "Labels": cfg.get("Labels") or {},
            "Annotations": {},
            "ManifestType": self.manifest_type,
            "User": cfg.get("User", ""),
            "History": self.history or self.config.get("history", []),
            "NamesHistory": [],
        }


def _created(config: dict[str, Any], fallback: float) -> float:
    """The config's `created` as a timestamp (what Podman shows), else when it was stored here."""
    import datetime

    text = config.get("created")
    if isinstance(text, str) and text:
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            return fallback
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed.timestamp()
    return fallback


def _go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """Apply Dockerfile-style `--change` instructions (CMD, ENTRYPOINT, ENV, ...) to an image config."""
    for change in changes:
        text = change.strip()
        cut = min((i for i in (text.find(" "), text.find("=")) if i > 0), default=len(text))
        instruction, value = text[:cut].upper(), text[cut + 1:]
        value = value.strip()
        if instruction in ("CMD", "ENTRYPOINT"):
            config["Cmd" if instruction == "CMD" else "Entrypoint"] = _exec_form(value)
        elif instruction == "ENV":
            env = config.setdefault("Env", [])
            for key, val in _pairs(value, instruction):
                env[:] = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
        elif instruction == "LABEL":
            config.setdefault("Labels", {}).update(dict(_pairs(value, instruction)))
        elif instruction == "EXPOSE":
            for port in value.split():
                config.setdefault("ExposedPorts", {})[port if "/" in port else port + "/tcp"] = {}
        elif instruction == "VOLUME":
            vols = json.loads(value) if value.startswith("[") else value.split()
            for vol in vols:
                config.setdefault("Volumes", {})[vol] = {}
        elif instruction in ("USER", "WORKDIR", "STOPSIGNAL"):
            config[{"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[instruction]] = value
        elif instruction == "HEALTHCHECK":
            from ..health import from_instruction

            config["Healthcheck"] = from_instruction(value)
        elif instruction == "ONBUILD":
            config.setdefault("OnBuild", []).append(value)
        else:
            raise InvalidArgument(f'invalid change "{change}" - invalid instruction {instruction}')


def _exec_form(value: str) -> list[str]:
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return ["/bin/sh", "-c", value]


def _pairs(value: str, instruction: str) -> list[tuple[str, str]]:
    import shlex

    if "=" not in value.split(" ", 1)[0]:
        key, _, val = value.partition(" ")
        if not key:
            raise InvalidArgument(f"{instruction} requires a value")
        return [(key, val.strip())]
    out = []
    for item in shlex.split(value):
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction} {item!r}: expected KEY=VALUE")
        out.append((key, val))
    return out


TAR_SPLIT = "tar-split"  # in a layer's dir: its tar's headers and file references
ATTIC = "attic"  # in a layer's dir: files the tar-split record needs that the tar itself removed


class ImageStore:
    """Images in the DB; layers in the LayerStore; configs and layer tars in the ContentStore."""

    def __init__(self, db: Database, content: ContentStore, layers: LayerStore):
        self.db = db
        self.content = content
        self.layers = layers
        self._swept = False

    # -- reading --------------------------------------------------------------
    def _load(self, image_id: str) -> Image:
        rows = self.db.query("SELECT meta FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NoSuchImage(image_id)
        meta = json.loads(rows[0][0])
        names = [r[0] for r in self.db.query("SELECT name FROM image_names WHERE image_id = ? ORDER BY rowid", (image_id,))]
        config = json.loads(self.content.read("sha256:" + image_id))
        return Image(id=image_id, names=names, config=config, layers=meta["layers"], size=meta["size"],
                     created=_created(config, meta["created"]), digest=meta.get("digest", ""),
                     history=config.get("history", []),
                     manifest_type=meta.get("manifest_type", OCI_MANIFEST))

    def list(self) -> list[Image]:
        return [self._load(r[0]) for r in self.db.query("SELECT id FROM images ORDER BY created DESC")]

    def resolve_id(self, name_or_id: str) -> str:
        """The image ID for a name (short names match any registry), a full ID or an ID prefix."""
        return self._resolve(name_or_id)[0]

    def _resolve(self, name_or_id: str) -> tuple[str, str | None]:
        """(image ID, the stored name that matched or None when matched by ID)."""
        text = name_or_id[7:] if name_or_id.startswith("sha256:") else name_or_id
        if len(text) >= 3 and all(c in "0123456789abcdef" for c in text):
            rows = self.db.query("SELECT id FROM images WHERE id >= ? AND id < ?", (text, text + "g"))
            if len(rows) == 1:
                return rows[0][0], None
        try:
            ref = refs.parse(name_or_id)
        except InvalidArgument:
            raise NoSuchImage(name_or_id) from None
        if ref.digest:
            return self._resolve_digest(name_or_id, ref)
        tag = ref.tag or "latest"
        if ref.domain:
            candidates = [str(refs.Reference(ref.domain, ref.path, tag))]
        else:
            candidates = [str(refs.normalize(name_or_id, refs.LOCAL_DOMAIN)), str(refs.normalize(name_or_id))]
        for name in candidates:
            rows = self.db.query("SELECT image_id FROM image_names WHERE name = ?", (name,))
            if rows:
                return rows[0][0], name
        if not ref.domain:  # any registry: `<domain>/<path>:<tag>`
            rows = self.db.query("SELECT image_id, name FROM image_names WHERE name LIKE ? ESCAPE '\\'",
                                 ("%/" + _like_escape(f"{ref.path}:{tag}"),))
            if rows:
                return rows[0][0], rows[0][1]
        raise NoSuchImage(name_or_id)

    def _resolve_digest(self, text: str, ref: refs.Reference) -> tuple[str, str | None]:
        """`repository@sha256:...`: the image with that manifest digest and a name in that
        repository (a short repository matches under any registry, localhost first)."""
        def wanted(repository: str) -> bool:
            if ref.domain:
                return repository == ref.repository
            return repository.endswith("/" + ref.path) or repository == refs.normalize(ref.path).repository

        rows = self.db.query("SELECT id FROM images WHERE json_extract(meta, '$.digest') = ?", (ref.digest,))
        for (image_id,) in rows:
            names = [r[0] for r in self.db.query("SELECT name FROM image_names WHERE image_id = ?", (image_id,))]
            for name in sorted(names, key=lambda n: not n.startswith(refs.LOCAL_DOMAIN + "/")):
                if wanted(refs.parse(name).repository):
                    return image_id, name
        raise NoSuchImage(text)

    def get(self, name_or_id: str) -> Image:
        return self._load(self.resolve_id(name_or_id))

    def exists(self, name_or_id: str) -> bool:
        try:
            self.resolve_id(name_or_id)
            return True
        except NoSuchImage:
            return False

    # -- writing --------------------------------------------------------------
    def has_layer(self, diff_id: str) -> bool:
        """Whether the layer with this uncompressed digest is already in the store."""
        return self.db.layer(validate_digest(diff_id)) is not None

    def open_layer_tar(self, diff_id: str) -> tuple[BinaryIO, int]:
        """A stored layer's uncompressed tar (what save and push send) and its size. It is rebuilt
        from the layer's files and tar-split record, checked against `diff_id` as it is read."""
        from ..storage import tarsplit

        layer_id = validate_digest(diff_id)
        size = self.layer_size(diff_id)
        base = self.layers.dir(layer_id)
        records = os.path.join(base, TAR_SPLIT)
        if not os.path.exists(records):  # stored before tar-split: the tar itself is in the content store
            tar = open(self.content.path(diff_id), "rb")
            return tar, os.fstat(tar.fileno()).st_size
        stream = tarsplit.open_tar(records, self.layers.diff(layer_id), os.path.join(base, ATTIC), diff_id, size)
        return stream, size  # type: ignore[return-value]

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        """`podman history`: the image's history entries, newest first, each with `id` (the image
        of that step when it is in the store, else "<missing>"), `created` (seconds), `created_by`,
        `size` (bytes of the layer the step made, 0 for an empty step) and `comment`."""
        image = self.get(name_or_id)
        entries = list(self.config_history(image))
        diff_ids = list(image.config.get("rootfs", {}).get("diff_ids", []))
        tops = {}  # layer stack -> a stored image with exactly that stack
        for other in self.list():
            tops.setdefault(tuple(other.config.get("rootfs", {}).get("diff_ids", [])), other.id)
        rows, layer = [], 0
        for entry in entries:
            empty = bool(entry.get("empty_layer"))
            size = 0
            if not empty and layer < len(diff_ids):
                size = self.layer_size(diff_ids[layer])
                layer += 1
            rows.append({"created": _created(entry, image.created), "created_by": str(entry.get("created_by", "")),
                         "size": size, "comment": str(entry.get("comment", "")),
                         "id": tops.get(tuple(diff_ids[:layer]), "<missing>") if not empty else "<missing>"})
        rows.reverse()
        if rows:
            rows[0]["id"] = image.id
        return rows

    @staticmethod
    def config_history(image: Image) -> list[dict[str, Any]]:
        """The config's history, or one entry per layer when it has none."""
        history = image.config.get("history")
        if isinstance(history, list) and history and all(isinstance(h, dict) for h in history):
            return history
        return [{"created": image.config.get("created", "")} for _ in image.config.get("rootfs", {}).get("diff_ids", [])]

    def layer_size(self, diff_id: str) -> int:
        """Bytes of a stored layer's uncompressed tar."""
        layer = self.db.layer(validate_digest(diff_id))
        if layer is None:
            raise NoSuchImage(f"layer {diff_id} is not in the store")
        return layer["size"]

    def write_gzipped_layer(self, diff_id: str, out: BinaryIO) -> tuple[str, int]:
        """Write a stored layer's tar gzip-compressed, reproducibly (no name, mtime 0, level 6),
        to `out`; returns the digest and size of what was written."""
        import gzip
        import shutil

        hashed = _HashingWriter(out)
        stream, _ = self.open_layer_tar(diff_id)
        with stream, gzip.GzipFile(filename="", mode="wb", fileobj=hashed, mtime=0, compresslevel=6) as gz:  # type: ignore[arg-type]
            shutil.copyfileobj(stream, gz, 1 << 20)
        return "sha256:" + hashed.hash.hexdigest(), hashed.size

    def put_layer(self, stream: BinaryIO, *, diff_id: str | None = None, max_bytes: int = MAX_LAYER_BYTES) -> tuple[str, int]:
        """Store a layer from a plain or compressed tar stream, in one pass: it is unpacked into a
        read-only layer dir, and what else the tar holds goes to the layer's tar-split record.
        Returns (diff_id, tar size).

        With `diff_id` the content must match it; on any error nothing of the layer is kept.
        A layer already present is reused (the stream is still read, to check it).
        """
        from ..storage.archive import ArchiveError, ExtractLimits, WhiteoutMode, apply_tar, decompressed
        from ..storage.tarsplit import Recorder

        if diff_id is not None and self.db.layer(validate_digest(diff_id)):
            source = decompressed(stream, max_bytes)
            try:
                hashed = HashingReader(source)  # type: ignore[arg-type]
                digest, size = hashed.digest(), hashed.size
            except ArchiveError as exc:
                raise InvalidArgument(f"invalid layer: {exc}") from exc
            finally:
                source.close()
            _check_diff_id(digest, diff_id)
            return digest, size
        # unpack into a directory of this call's own, moved in once the digest is checked
        from ..files import scratch_name, sweep_scratch

        if not self._swept:  # once per process: sweep what a killed pull or load left half-unpacked,
            sweep_scratch(self.layers.root, INCOMING)  # and spread new layers over the file system
            self.layers.spread()
            self._swept = True
        work_id = self.layers.create_apart(lambda: scratch_name(INCOMING))
        path = self.layers.diff(work_id)
        base = self.layers.dir(work_id)
        try:
            os.mkdir(os.path.join(base, ATTIC), 0o700)
            attic_fd = os.open(os.path.join(base, ATTIC), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                with open(os.path.join(base, TAR_SPLIT), "xb", buffering=1 << 20) as out:
                    result = apply_tar(stream, path, whiteouts=WhiteoutMode.OVERLAY, record=Recorder(out, attic_fd),
                                       limits=ExtractLimits(max_bytes=max_bytes))
                if not os.listdir(attic_fd):
                    os.rmdir(os.path.join(base, ATTIC))
            except ArchiveError as exc:
                raise InvalidArgument(f"invalid layer: {exc}") from exc
            finally:
                os.close(attic_fd)
            digest, size = result.diff_id, result.size
            if diff_id is not None:
                _check_diff_id(digest, diff_id)
            layer_id = digest[7:]
            with self.layers.lock:  # another process may be storing the same layer
                if self.db.layer(layer_id):
                    self.layers.remove(work_id)
                    return digest, size
                self.layers.remove(layer_id)  # a crash may have left a partial dir
                os.rename(base, self.layers.dir(layer_id))
                with self.db.transaction() as cur:
                    self.db.add_layer(cur, layer_id, None, digest, size, "image")
        except BaseException:
            self.layers.remove(work_id)
            raise
        return digest, size

    def register(self, config_bytes: bytes, names: list[str] | None = None, *, digest: str = "",
                 manifest_type: str = OCI_MANIFEST) -> Image:
        """Record an image from its config blob, whose `rootfs.diff_ids` must all be stored layers
        (put_layer first). The ID is the config's digest; `names` are full references; `digest`
        is the manifest digest the image came with (RepoDigests), if any."""
        if len(config_bytes) > MAX_CONFIG_BYTES:
            raise InvalidArgument(f"image config is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            config = json.loads(config_bytes)
            diff_ids = config["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"invalid image config: {exc}") from None
        if not isinstance(config, dict) or not isinstance(diff_ids, list) or not diff_ids:
            raise InvalidArgument("invalid image config: rootfs.diff_ids must list the layers")
        layers = []
        size = 0
        for diff_id in diff_ids:
            layer = self.db.layer(validate_digest(diff_id)) if isinstance(diff_id, str) else None
            if layer is None:
                raise InvalidArgument(f"image config names layer {diff_id!r}, which is not in the store")
            layers.append(layer["id"])
            size += layer["size"]
        config_digest = self.content.put_bytes(config_bytes)
        image_id = config_digest[7:]
        now = time.time()
        meta = {"layers": layers, "size": size, "created": now, "digest": digest or config_digest,
                "manifest_type": manifest_type}
        with self.db.transaction() as cur:
            cur.execute("INSERT OR IGNORE INTO images (id, meta, created) VALUES (?, ?, ?)",
                        (image_id, json.dumps(meta), now))
            for name in names or []:
                cur.execute("INSERT OR REPLACE INTO image_names (name, image_id) VALUES (?, ?)", (name, image_id))
        return self._load(image_id)

    def import_rootfs(self, path: str, reference: str | None = None, *, changes: list[str] | None = None,
                      message: str = "", progress: ByteProgress | None = None) -> Image:
        """`podman import`: one layer from a rootfs tarball (plain or compressed), plus a config;
        `progress` gets the bytes of the tarball read so far."""
        name = refs.normalize_local(reference) if reference else None
        config_part: dict[str, Any] = {}
        apply_changes(config_part, changes or [])
        with open(path, "rb") as raw:
            meter = Meter(progress, os.fstat(raw.fileno()).st_size)
            layer_digest, _ = self.put_layer(meter.reader(raw))
        meter.finish()
        now = time.time()
        config = {
            "created": rfc3339(now),
            "architecture": _go_arch(),
            "os": "linux",
            "config": config_part,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": rfc3339(now), "created_by": "/bin/sh -c #(nop) ADD file in / ",
                         **({"comment": message} if message else {})}],
        }
        if message:
            config["comment"] = message
        return self.register(json.dumps(config, separators=(",", ":")).encode(), [name] if name else [])

    def tag(self, name_or_id: str, *targets: str) -> list[str]:
        """Add names (short ones under localhost/); a name another image had moves here."""
        image_id = self.resolve_id(name_or_id)
        names = [refs.normalize_local(t) for t in targets]
        with self.db.transaction() as cur:
            for name in names:
                cur.execute("INSERT OR REPLACE INTO image_names (name, image_id) VALUES (?, ?)", (name, image_id))
        return names

    def untag(self, name_or_id: str, *targets: str) -> list[str]:
        """Remove the given names (all of them when none is given); the image itself stays."""
        image = self.get(name_or_id)
        if not targets:
            names = list(image.names)
        else:
            names = []
            for target in targets:
                name = refs.normalize_local(target)
                if name not in image.names:
                    raise InvalidArgument(f"{name}: tag not known")
                names.append(name)
        with self.db.transaction() as cur:
            for name in names:
                cur.execute("DELETE FROM image_names WHERE name = ? AND image_id = ?", (name, image.id))
        return names

    def remove(self, name_or_id: str, *, force: bool, users: Callable[[str], list[str]],
               remove_containers: Callable[[list[str]], None]) -> tuple[list[str], list[str]]:
        """`rmi`: untag a name if the image has several, else delete it; returns (untagged, deleted ids)."""
        image_id, matched = self._resolve(name_or_id)
        image = self._load(image_id)
        if matched and len(image.names) > 1:
            self.db.execute("DELETE FROM image_names WHERE name = ?", (matched,))
            return [matched], []
        ctr_ids = users(image_id)
        if ctr_ids and not force:
            raise ImageInUse(
                f"image used by {ctr_ids[0]}: image is in use by a container: consider listing external "
                "containers and force-removing image")
        if ctr_ids:
            remove_containers(ctr_ids)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM image_names WHERE image_id = ?", (image_id,))
            cur.execute("DELETE FROM images WHERE id = ?", (image_id,))
        self.content.delete("sha256:" + image_id)
        self.gc_layers(image.layers)
        return list(image.names), [image_id]

    def gc_layers(self, layer_ids: list[str]) -> None:
        """Delete image layers no image references any more (after rmi, or a failed pull)."""
        used = set()
        for (meta,) in self.db.query("SELECT meta FROM images"):
            used.update(json.loads(meta)["layers"])
        for layer_id in layer_ids:
            if layer_id in used:
                continue
            with self.layers.lock:
                layer = self.db.layer(layer_id)
                self.layers.remove(layer_id)
                self.db.execute("DELETE FROM layers WHERE id = ?", (layer_id,))
                if layer and layer["diff_id"]:
                    self.content.delete(layer["diff_id"])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _check_diff_id(digest: str, diff_id: str) -> None:
    if digest != diff_id:
        raise InvalidArgument(f"layer content has digest {digest}, expected {diff_id}: refusing it")


class _HashingWriter:
    """Passes writes on to `out`, hashing and counting them."""

    def __init__(self, out: BinaryIO):
        import hashlib

        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()
