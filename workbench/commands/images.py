"""Image commands: import, images, rmi, tag, untag, image exists, image bootstrap."""

from __future__ import annotations

import os
import time

from ..engine.errors import ImageInUse, NoSuchImage, WorkbenchError
from . import humanize
from .context import Context
from .output import emit_table

IMAGES_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedHuman}}\t{{.Size}}"
IMAGES_DIGESTS_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedHuman}}\t{{.Size}}"
IMAGES_HEADERS = {"ID": "IMAGE ID", "CreatedHuman": "CREATED", "Repository": "REPOSITORY"}


def import_(ctx: Context) -> None:
    a = ctx.args
    path = a.path
    if path == "-":
        raise WorkbenchError("importing from standard input is not supported: pass a file path")
    image = ctx.rt.import_image(path, a.reference, changes=a.change, message=a.message,
                                progress=ctx.progress(f"importing {path}", a.quiet))
    ctx.out.line("sha256:" + image.id)  # as podman import


def image_rows(images, no_trunc: bool) -> list[dict]:
    now = time.time()
    rows = []
    for img in images:
        names = img.names or ["<none>:<none>"]
        for name in names:
            repo, _, tag = name.rpartition(":")
            if "/" in tag or not repo:
                repo, tag = name, "<none>"
            rows.append({
                "Repository": repo, "Tag": tag,
                "ID": ("sha256:" + img.id) if no_trunc else img.id[:12],
                "Id": img.id, "Digest": img.digest,
                "CreatedHuman": humanize.ago(img.created, now), "CreatedAt": time.strftime(
                    "%Y-%m-%d %H:%M:%S %z %Z", time.localtime(img.created)), "Created": int(img.created),
                "Size": humanize.size(img.size), "VirtualSize": humanize.size(img.size), "SizeBytes": img.size,
                "Names": list(img.names), "Labels": img.container_config.get("Labels") or {},
                "Containers": 0, "ReadOnly": False, "History": [],
            })
    return rows


def _image_filter(ctx: Context, key: str, value: str):
    """One `--filter key=value` as a predicate on images (Podman's reference, dangling, label,
    before, since, id)."""
    if key == "reference":
        pattern = value if ":" in value.rsplit("/", 1)[-1] else value + ":*"
        return lambda img: any(_name_matches(n, pattern) for n in img.names)
    if key == "dangling":
        want = value.lower() in ("true", "1")
        return lambda img: (not img.names) == want
    if key == "label":
        from .filters import labels_match

        matches = labels_match(value)
        return lambda img: matches(img.container_config.get("Labels") or {})
    if key in ("before", "since"):
        pivot = ctx.rt.image(value).created
        return (lambda img: img.created < pivot) if key == "before" else (lambda img: img.created > pivot)
    if key == "id":
        return lambda img: img.id.startswith(value.removeprefix("sha256:"))
    raise WorkbenchError(f'invalid image filter "{key}": supported are reference, dangling, label, before, '
                         "since, id")


def _name_matches(name: str, pattern: str) -> bool:
    """A full name against a reference pattern, also without its domain or repository path."""
    import fnmatch

    return any(fnmatch.fnmatchcase(candidate, pattern)
               for candidate in (name, name.split("/", 1)[-1], name.rsplit("/", 1)[-1]))


def images(ctx: Context) -> None:
    a = ctx.args
    from .filters import predicate

    specs = a.filter + ([f"reference={a.reference}"] if a.reference else [])
    matches = predicate(specs, lambda key, value: _image_filter(ctx, key, value))
    imgs = [img for img in ctx.rt.images() if matches(img)]
    patterns = [s.split("=", 1)[1] for s in specs if s.startswith("reference=")]
    if patterns:  # list only the names that matched, as Podman does
        patterns = [p if ":" in p.rsplit("/", 1)[-1] else p + ":*" for p in patterns]
        imgs = [img._replace(names=[n for n in img.names if any(_name_matches(n, p) for p in patterns)])
                for img in imgs]
    if a.quiet:
        seen = []
        for img in imgs:
            ident = ("sha256:" + img.id) if a.no_trunc else img.id[:12]
            if ident not in seen:
                seen.append(ident)
                ctx.out.line(ident)
        return
    rows = sorted(image_rows(imgs, a.no_trunc), key=_IMAGE_SORT_KEYS[a.sort])
    emit_table(ctx.out, rows, a.format, IMAGES_DIGESTS_FORMAT if a.digests else IMAGES_FORMAT,
               IMAGES_HEADERS, noheading=a.noheading)


#: `images --sort` keys, as Podman's: the newest first, the smallest first, names in order.
_IMAGE_SORT_KEYS = {"created": lambda r: -r["Created"], "id": lambda r: r["Id"], "size": lambda r: r["SizeBytes"],
                    "repository": lambda r: (r["Repository"], r["Tag"]), "tag": lambda r: r["Tag"]}


def rmi(ctx: Context) -> None:
    a = ctx.args
    names = [img.id for img in ctx.rt.images()] if a.all else a.images
    if not names and not a.all:
        raise WorkbenchError("image name or ID must be specified")
    for name in names:
        try:
            untagged, deleted = ctx.rt.remove_image(name, force=a.force)
        except NoSuchImage as exc:
            if not a.ignore:
                ctx.fail(str(exc), 1)
            continue
        except ImageInUse as exc:
            ctx.fail(str(exc), 2)
            continue
        for n in untagged:
            ctx.out.line(f"Untagged: {n}")
        for i in deleted:
            ctx.out.line(f"Deleted: {i}")


def tag(ctx: Context) -> None:
    ctx.rt.tag_image(ctx.args.image, *ctx.args.targets)


def untag(ctx: Context) -> None:
    ctx.rt.untag_image(ctx.args.image, *ctx.args.targets)


def bootstrap(ctx: Context) -> None:
    """`image bootstrap busybox|debian [NAME]`: a base image made here, without a registry."""
    a = ctx.args
    import tempfile

    from ..engine.images import bootstrap as base

    from ..engine.progress import UNKNOWN

    name = a.name or (f"debian:{a.suite}" if a.kind == "debian" else "busybox")
    from ..engine.files import sweep_scratch

    sweep_scratch(ctx.rt.root, ".tmp-bootstrap-")
    with tempfile.TemporaryDirectory(dir=ctx.rt.root, prefix=f".tmp-bootstrap-{os.getpid()}-") as tmp:
        tar = os.path.join(tmp, "rootfs.tar")
        try:
            if a.kind == "busybox":
                base.write_busybox_rootfs(tar)
                changes = ['CMD ["sh"]']
            else:
                packages = [p for item in a.include for p in item.split(",") if p]
                base.write_debian_rootfs(tar, suite=a.suite, include=packages, mirror=a.mirror,
                                         on_stage=lambda stage: ctx.out.progress(0, UNKNOWN, f"{name}: {stage}"))
                changes = ['CMD ["bash"]']
        except (FileNotFoundError, RuntimeError) as exc:
            raise WorkbenchError(str(exc)) from None
        image = ctx.rt.import_image(tar, name, changes=changes, message=f"workbench image bootstrap {a.kind}",
                                    progress=ctx.progress(f"bootstrapped {name}"))
    ctx.out.line(image.id)


def image_exists(ctx: Context) -> None:
    if not ctx.rt.image_store.exists(ctx.args.image):
        ctx.exit_code = 1


HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedHuman}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {"CreatedHuman": "CREATED", "CreatedBy": "CREATED BY"}


def history(ctx: Context) -> None:
    """`history IMAGE`: how the image was made, newest step first (Podman's columns)."""
    a = ctx.args
    now = time.time()
    rows = []
    for entry in ctx.rt.image_store.history(a.image):
        ident = entry["id"] if a.no_trunc or entry["id"] == "<missing>" else entry["id"][:12]
        created_by = entry["created_by"]
        if not a.no_trunc and len(created_by) > 45:
            created_by = created_by[:42] + "..."
        rows.append({"ID": ident, "CreatedHuman": humanize.ago(entry["created"], now) if a.human else
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["created"])),
                     "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["created"])),
                     "Created": int(entry["created"]), "CreatedBy": created_by,
                     "Size": humanize.size(entry["size"]) if a.human else str(entry["size"]),
                     "SizeBytes": entry["size"], "Comment": entry["comment"]})
    if a.quiet:
        for row in rows:
            ctx.out.line(row["ID"])
        return
    emit_table(ctx.out, rows, a.format, HISTORY_FORMAT, HISTORY_HEADERS, noheading=False)


def build(ctx: Context) -> None:
    """`build [-t NAME] [-f FILE] [--build-arg K=V] CONTEXT`: step lines and RUN output as they come."""
    from .containers import default_network

    a = ctx.args
    args = {}
    for item in a.build_arg:
        key, sep, value = item.partition("=")
        args[key] = value if sep else os.environ.get(key, "")
    image = ctx.rt.build(a.context, containerfile=a.file, tags=a.tag, build_args=args,
                         network=a.network or default_network(), output=None if a.quiet else ctx.out.stream)
    ctx.out.line(image.id)
