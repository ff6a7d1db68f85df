"""Registry credentials in a containers-auth.json(5) file, kept mode 0600:
`{"auths": {"host[:port][/namespace]": {"auth": base64("user:password")}}}`."""

from __future__ import annotations

import base64
import json
import os

from ..errors import InvalidArgument, WorkbenchError

_DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")


class NotLoggedIn(WorkbenchError):
    """logout of a registry the auth file has no credentials for."""

    def __init__(self, registry: str):
        super().__init__(f"not logged into {registry}")


def path(auth_file: str | None = None) -> str:
    """`auth_file`, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else
    /run/containers/<uid>/auth.json (root's usual place)."""
    if auth_file:
        return auth_file
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return os.environ["REGISTRY_AUTH_FILE"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "containers", "auth.json")
    from ..rootless import host_uid

    return f"/run/containers/{host_uid()}/auth.json"


def normalize_key(registry: str) -> str:
    """The auth.json key for what a user typed: no scheme, no trailing `/`, `docker.io` for Docker Hub."""
    key = registry.strip()
    for scheme in ("docker://", "https://", "http://"):
        key = key.removeprefix(scheme)
    key = key.rstrip("/")
    for suffix in ("/v1", "/v2"):
        key = key.removesuffix(suffix)
    host, sep, rest = key.partition("/")
    if host in _DOCKER_HUB_ALIASES:
        host = "docker.io"
    if not host:
        raise InvalidArgument(f"invalid registry {registry!r}: expected HOST[:PORT][/NAMESPACE]")
    return host + sep + rest


def lookup(repository: str, auth_file: str | None = None) -> tuple[str, str] | None:
    """Credentials for `host[:port]/path`: the most specific of `host/a/b`, `host/a`, `host`."""
    auths = {normalize_key(k): v for k, v in _load(path(auth_file)).get("auths", {}).items()}
    parts = repository.split("/")
    for n in range(len(parts), 0, -1):
        entry = auths.get("/".join(parts[:n]))
        if isinstance(entry, dict) and entry.get("auth"):
            return _decode(entry["auth"], path(auth_file))
    return None


def store(registry: str, username: str, password: str, auth_file: str | None = None) -> None:
    """Save credentials for `registry` (replacing older ones)."""
    file = path(auth_file)
    data = _load(file)
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    data.setdefault("auths", {})[normalize_key(registry)] = {"auth": token}
    _save(file, data)


def remove(registry: str | None, auth_file: str | None = None, *, all: bool = False) -> bool:
    """Forget the credentials of `registry` (or of every registry); False if there were none."""
    file = path(auth_file)
    data = _load(file)
    auths = data.get("auths", {})
    if all:
        found = bool(auths)
        data["auths"] = {}
    else:
        key = normalize_key(registry or "")
        found = [k for k in auths if normalize_key(k) == key]
        for k in found:
            del auths[k]
    if found:
        _save(file, data)
    return bool(found)


def _load(file: str) -> dict:
    try:
        with open(file, "rb") as f:
            data = json.loads(f.read(1 << 20))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"reading auth file {file!r}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise InvalidArgument(f'auth file {file!r}: expected {{"auths": {{...}}}}')
    return data


def _save(file: str, data: dict) -> None:
    """Write atomically, mode 0600, in a directory created 0700."""
    from ..files import write_output

    os.makedirs(os.path.dirname(os.path.abspath(file)), mode=0o700, exist_ok=True)
    write_output(file, lambda out: out.write(json.dumps(data, indent="\t").encode() + b"\n"), mode=0o600)


def _decode(auth: object, file: str) -> tuple[str, str]:
    try:
        user, sep, password = base64.b64decode(str(auth), validate=True).decode().partition(":")
    except ValueError:
        sep = ""
    if not sep:
        raise InvalidArgument(f"auth file {file!r}: an \"auth\" entry is not base64(user:password)")
    return user, password
