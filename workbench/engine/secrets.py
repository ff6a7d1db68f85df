"""Secrets, as Podman's file driver: a password or key stored once (`secret create`), then given
to containers (`--secret NAME`) as a read-only file, /run/secrets/NAME by default, or as an
environment variable, without appearing in the container's config, image or inspect output.

The data lives in `<graph root>/secrets/<id>` (mode 0600, in a 0700 directory), the metadata in
the state DB. At init a mounted secret is copied into the container's run directory (tmpfs) with
its owner and mode, and bound read-only at its target.
"""

from __future__ import annotations

import json
import os
import re
import time

from .errors import InvalidArgument, WorkbenchError
from .files import remove_tree
from .records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .container import Container
    from .db import Database

MAX_SIZE = 512_000  # bytes: Podman's limit
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class NoSuchSecret(WorkbenchError):
    """A secret name or ID that is not in the store."""

    def __init__(self, name: str):
        super().__init__(f'no secret with name or id "{name}": no such secret')


class Secret(NamedTuple):
    id: str
    name: str
    created: float
    labels: dict[str, str]

    def inspect(self) -> dict[str, Any]:
        """Podman's `secret inspect` document (never the data)."""
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created)) + "Z"
        return {"ID": self.id, "CreatedAt": created, "UpdatedAt": created,
                "Spec": {"Name": self.name, "Driver": {"Name": "file", "Options": {}}, "Labels": dict(self.labels)}}


class SecretStore:
    """The secrets of one graph root."""

    def __init__(self, db: Database, root: str):
        self.db, self.dir = db, os.path.join(root, "secrets")

    def create(self, name: str, data: bytes, labels: dict[str, str] | None = None, *, replace: bool = False) -> Secret:
        if not _NAME.match(name) or len(name) > 253:
            raise InvalidArgument(f'invalid secret name "{name}": names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*')
        if not 0 < len(data) < MAX_SIZE:
            raise InvalidArgument(f"secret data must be larger than 0 and less than {MAX_SIZE} bytes")
        secret = Secret(os.urandom(13).hex()[:25], name, time.time(), dict(labels or {}))  # Podman's 25 digits
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.dir, secret.id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            with self.db.transaction() as cur:
                old = cur.execute("SELECT id FROM secrets WHERE name = ?", (name,)).fetchone()
                if old and not replace:
                    raise WorkbenchError(f"{name}: secret name in use")
                if old:
                    cur.execute("DELETE FROM secrets WHERE id = ?", (old[0],))
                cur.execute("INSERT INTO secrets (id, name, data, created) VALUES (?, ?, ?, ?)",
                            (secret.id, name, json.dumps(secret.labels), secret.created))
        except BaseException:
            os.unlink(path)
            raise
        if old:
            _unlink(os.path.join(self.dir, old[0]))
        return secret

    def get(self, name_or_id: str) -> Secret:
        rows = self.db.query("SELECT id, name, created, data FROM secrets WHERE name = ? OR id = ?",
                             (name_or_id, name_or_id))
        if not rows:
            rows = self.db.query("SELECT id, name, created, data FROM secrets WHERE id LIKE ? || '%'", (name_or_id,))
            if len(rows) != 1:
                raise NoSuchSecret(name_or_id)
        secret_id, name, created, labels = rows[0]
        return Secret(secret_id, name, created, json.loads(labels))

    def list(self) -> list[Secret]:
        return [Secret(i, n, c, json.loads(d)) for i, n, c, d in
                self.db.query("SELECT id, name, created, data FROM secrets ORDER BY name")]

    def data(self, secret: Secret) -> bytes:
        with open(os.path.join(self.dir, secret.id), "rb") as f:
            return f.read(MAX_SIZE + 1)

    def users(self, secret: Secret) -> list[str]:
        rows = self.db.query("SELECT id, config FROM containers ORDER BY created")
        return [ctr_id for ctr_id, config in rows
                if any(s.get("id") == secret.id for s in json.loads(config).get("secrets") or [])]

    def remove(self, name_or_id: str) -> Secret:
        """Remove a secret no container uses; the secret."""
        secret = self.get(name_or_id)
        users = self.users(secret)
        if users:
            raise WorkbenchError(f"secret {secret.name} is in use by container(s) {', '.join(u[:12] for u in users)}: "
                                 "remove them first")
        self.db.execute("DELETE FROM secrets WHERE id = ?", (secret.id,))
        _unlink(os.path.join(self.dir, secret.id))
        return secret


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def parse_use(store: SecretStore, spec: str) -> dict[str, Any]:
    """`--secret NAME[,type=mount|env][,target=T][,uid=N][,gid=N][,mode=OCTAL]` as a config entry."""
    name, *options = spec.split(",")
    secret = store.get(name)
    use: dict[str, Any] = {"name": secret.name, "id": secret.id, "type": "mount", "target": "",
                           "uid": 0, "gid": 0, "mode": 0o444}
    for option in options:
        key, sep, value = option.partition("=")
        if key == "type" and value in ("mount", "env"):
            use["type"] = value
        elif key == "target" and value:
            use["target"] = value
        elif key in ("uid", "gid") and value.isdigit():
            use[key] = int(value)
        elif key == "mode" and re.fullmatch(r"[0-7]{1,4}", value):
            use["mode"] = int(value, 8)
        else:
            raise InvalidArgument(f'invalid --secret option "{option}" in "{spec}": use type=mount|env, target=, '
                                  "uid=, gid=, mode=")
    if use["type"] == "env":
        if any(use[k] != d for k, d in (("uid", 0), ("gid", 0), ("mode", 0o444))):
            raise InvalidArgument(f'--secret "{spec}": uid, gid and mode are for type=mount')
        use["target"] = use["target"] or secret.name
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", use["target"]):
            raise InvalidArgument(f'--secret "{spec}": "{use["target"]}" is not an environment variable name')
    else:
        target = use["target"] or secret.name
        use["target"] = target if target.startswith("/") else f"/run/secrets/{target}"
        if ".." in use["target"].split("/"):
            raise InvalidArgument(f'--secret "{spec}": the target must not contain ".."')
    return use


def for_container(c: Container) -> tuple[dict[str, str], dict[str, str]]:
    """At init: (environment variables, container path -> host file to bind) for its secrets; the
    files are written to the container's run directory, owned and moded as asked."""
    store = c.rt.secrets
    env, files = {}, {}
    directory = os.path.join(c.run_dir, "secrets")
    if c.config.secrets:
        remove_tree(directory)
        os.makedirs(directory, mode=0o700)
    for i, use in enumerate(c.config.secrets):
        try:
            secret = store.get(use["id"])
        except NoSuchSecret:
            raise WorkbenchError(f"secret {use['name']} of container {c.id} has been removed") from None
        data = store.data(secret)
        if use["type"] == "env":
            env[use["target"]] = data.decode(errors="replace")
            continue
        path = os.path.join(directory, str(i))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if os.geteuid() == 0:  # rootless, the engine's own user is the container's root already
                os.fchown(f.fileno(), use["uid"], use["gid"])
            os.fchmod(f.fileno(), use["mode"])
        files[use["target"]] = path
    return env, files

