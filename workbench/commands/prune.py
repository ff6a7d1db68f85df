"""Removing what nothing uses, as Podman: `container prune`, `image prune`, `volume prune`,
`network prune`, `system prune` (all of them), and `system df` (what the store holds, and how
much of it a prune would give back). Each prune asks first, unless -f/--force."""

from __future__ import annotations

from ..engine.errors import ContainerRemoved, ContainerStateError, NoSuchContainer, WorkbenchError
from . import humanize
from .context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

#: Removed items: (ID or name, bytes given back).
Removed = list[tuple[str, int]]


def _confirm(ctx: Context, warning: str) -> bool:
    """Podman's question before a prune: yes with -f/--force, else the answer on standard input."""
    if ctx.args.force:
        return True
    ctx.out.line(warning)
    try:
        answer = input("Are you sure you want to continue? [y/N] ")
    except (EOFError, NotImplementedError):  # nothing to read (IPython's StdinNotImplementedError too)
        raise WorkbenchError("no answer on standard input: confirm with -f/--force") from None
    return answer.strip().lower() in ("y", "yes")


# -- what each prune removes ---------------------------------------------------------------------
def _container_filter(key: str, value: str) -> "Callable[[Any], bool]":
    from .filters import labels_match

    if key in ("label", "label!"):
        matches = labels_match(value)
        return (lambda c: matches(c.config.labels)) if key == "label" else (lambda c: not matches(c.config.labels))
    if key == "until":  # created before that time (a duration: that long ago)
        from ..engine.logs import parse_since

        limit = parse_since(value).timestamp()
        return lambda c: c.config.created < limit
    raise WorkbenchError(f'invalid filter "{key}": container prune supports label, label! and until')


def _prune_containers(ctx: Context, filters: list[str]) -> Removed:
    """Remove every container that is not running or paused (and matches the filters)."""
    from ..engine.files import tree_size
    from ..engine.state import ContainerState as S
    from .filters import predicate

    wanted = predicate(filters, _container_filter)
    removed = []
    for c in ctx.rt.containers():
        if c.st.state in (S.RUNNING, S.PAUSED, S.STOPPING) or not wanted(c):
            continue
        size = tree_size(ctx.rt.layers.diff(c.config.layer_id))
        try:
            c.remove()
        except (ContainerRemoved, NoSuchContainer, ContainerStateError):  # gone, or started, meanwhile
            continue
        removed.append((c.id, size))
    return removed


def _prune_images(ctx: Context, every_unused: bool) -> Removed:
    """Remove dangling images, or with `every_unused` every image no container uses."""
    used = {cfg["image_id"] for cfg, _ in ctx.rt.db.all_containers()}
    removed = []
    for img in ctx.rt.images():
        if img.id in used or (img.names and not every_unused):
            continue
        ctx.rt.remove_image(img.id)
        removed.append((img.id, img.size))
    return removed


def _prune_volumes(ctx: Context) -> Removed:
    from ..engine.files import tree_size

    store = ctx.rt.volumes
    removed = []
    for volume in store.list():
        if not store.users(volume.name):
            size = tree_size(volume.mountpoint)
            store.remove(volume.name)
            removed.append((volume.name, size))
    return removed


def _prune_networks(ctx: Context) -> Removed:
    from ..engine.network.networks import DEFAULT_NETWORK

    removed = []
    for network in ctx.rt.networks.list():
        if network.name != DEFAULT_NETWORK and not ctx.rt.networks.users(network.name):
            ctx.rt.networks.remove(network.name)
            removed.append((network.name, 0))
    return removed


# -- commands -------------------------------------------------------------------------------------
def container_prune(ctx: Context) -> None:
    if _confirm(ctx, "WARNING! This will remove all non running containers."):
        for ctr_id, _ in _prune_containers(ctx, ctx.args.filter):
            ctx.out.line(ctr_id)


def image_prune(ctx: Context) -> None:
    every = ctx.args.all
    if _confirm(ctx, "WARNING! This command removes all images without at least one container associated with "
                     "them." if every else "WARNING! This command removes all dangling images."):
        for image_id, _ in _prune_images(ctx, every):
            ctx.out.line(image_id)


def volume_prune(ctx: Context) -> None:
    store = ctx.rt.volumes
    unused = [v.name for v in store.list() if not store.users(v.name)]
    warning = "WARNING! This will remove all volumes not used by at least one container. The following " \
              "volumes will be removed:\n" + "\n".join(unused)
    if _confirm(ctx, warning):
        for name, _ in _prune_volumes(ctx):
            ctx.out.line(name)


def network_prune(ctx: Context) -> None:
    if _confirm(ctx, "WARNING! This will remove all networks not used by at least one container."):
        for name, _ in _prune_networks(ctx):
            ctx.out.line(name)


def system_prune(ctx: Context) -> None:
    """Stopped containers, unused networks, dangling (with --all: unused) images, and with
    --volumes unused volumes; each kind removed listed under its heading, then the space freed."""
    a = ctx.args
    kinds = ["all stopped containers", "all networks not used by at least one container"]
    if a.volumes:
        kinds.append("all volumes not used by at least one container")
    kinds.append("all images without at least one container associated with them" if a.all else
                 "all dangling images")
    if not _confirm(ctx, "WARNING! This command removes:\n" + "".join(f"\t- {k}\n" for k in kinds)):
        return
    sections = [("Containers", _prune_containers(ctx, a.filter))]
    if a.volumes:  # after the containers, whose anonymous volumes are unused now
        sections.append(("Volumes", _prune_volumes(ctx)))
    sections += [("Networks", _prune_networks(ctx)), ("Images", _prune_images(ctx, a.all))]
    for heading, removed in sections:
        if removed:
            ctx.out.line(f"Deleted {heading}")
            for name, _ in removed:
                ctx.out.line(name)
    ctx.out.line(f"Total reclaimed space: {humanize.compact(sum(size for _, removed in sections for _, size in removed))}")


def system_df(ctx: Context) -> None:
    """Images, containers and volumes: how many, how many in use, their size, and what a prune of
    the unused ones would give back."""
    from ..engine.files import tree_size
    from ..engine.state import ContainerState as S

    rt = ctx.rt
    containers = rt.containers()
    used_images = {c.config.image_id for c in containers}
    images = rt.images()
    running = [c.st.state in (S.RUNNING, S.PAUSED, S.STOPPING) for c in containers]
    ctr_sizes = [tree_size(rt.layers.diff(c.config.layer_id)) for c in containers]
    volumes = rt.volumes.list()
    vol_used = [bool(rt.volumes.users(v.name)) for v in volumes]
    vol_sizes = [tree_size(v.mountpoint) for v in volumes]
    rows = []
    for kind, active, sizes in (
            ("Images", [img.id in used_images for img in images], [img.size for img in images]),
            ("Containers", running, ctr_sizes), ("Local Volumes", vol_used, vol_sizes)):
        total = sum(sizes)
        reclaimable = sum(size for size, in_use in zip(sizes, active) if not in_use)
        share = round(100 * reclaimable / total) if total else 0
        rows.append({"Type": kind, "Total": len(sizes), "Active": sum(active), "Size": humanize.compact(total),
                     "SizeBytes": total, "Reclaimable": f"{humanize.compact(reclaimable)} ({share}%)",
                     "ReclaimableBytes": reclaimable})
    ctx.out.table(rows, ctx.args.format or "table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                  {"Type": "TYPE", "Total": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                   "Reclaimable": "RECLAIMABLE"})
