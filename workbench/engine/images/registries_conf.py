"""registries.conf (containers-registries.conf(5), TOML v2): insecure and blocked registries,
location rewrites and mirrors, short-name aliases and the unqualified-search list."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from ..errors import InvalidArgument

DEFAULT_PATH = "/etc/containers/registries.conf"


@dataclass(frozen=True)
class Mirror:
    """One `[[registry.mirror]]`: another place that serves the same repositories."""

    location: str
    insecure: bool = False


@dataclass(frozen=True)
class RegistryEntry:
    """One `[[registry]]` table: `prefix` (or `location`) names the host[:port][/namespace] it
    covers; `location` is where those repositories really are; mirrors are tried first."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Mirror, ...] = ()

    def sources(self, repository: str) -> list[tuple[str, bool]]:
        """(repository at the place, insecure) for `repository` (which the prefix matches): each
        mirror in order, then the location, as containers/image pulls."""
        rest = "" if self.prefix.startswith("*.") else repository[len(self.prefix):]
        primary = (self.location + rest) if self.location and not self.prefix.startswith("*.") else repository
        return [(m.location + rest, m.insecure) for m in self.mirrors] + [(primary, self.insecure)]


@dataclass
class RegistriesConf:
    """The merged configuration: the main file, then `<its dir>/registries.conf.d/*.conf` in order."""

    path: str = DEFAULT_PATH
    search: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    registries: list[RegistryEntry] = field(default_factory=list)

    def find(self, repository: str) -> RegistryEntry | None:
        """The entry with the longest prefix matching `repository` (`host[:port]/path`), if any."""
        best: RegistryEntry | None = None
        for entry in self.registries:
            if _matches(entry.prefix, repository) and (best is None or len(entry.prefix) > len(best.prefix)):
                best = entry
        return best

    def insecure(self, host: str) -> bool:
        entry = self.find(host)
        return bool(entry and entry.insecure)


def path() -> str:
    """$CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf."""
    return os.environ.get("CONTAINERS_REGISTRIES_CONF") or DEFAULT_PATH


def load(conf_path: str | None = None) -> RegistriesConf:
    """Read the configuration; missing files mean an empty one, malformed ones an InvalidArgument."""
    conf = RegistriesConf(path=conf_path or path())
    drop_ins = sorted(glob.glob(os.path.join(os.path.dirname(conf.path), "registries.conf.d", "*.conf")))
    by_prefix: dict[str, RegistryEntry] = {}
    for file in [conf.path, *drop_ins]:
        data = _read(file)
        entries = _entries(data, file)
        if "unqualified-search-registries" in data:
            conf.search = _strings(data["unqualified-search-registries"], file, "unqualified-search-registries")
        aliases = data.get("aliases", {})
        if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
            raise InvalidArgument(f"{file}: [aliases] must map short names to strings")
        conf.aliases.update(aliases)
        for entry in entries:
            by_prefix[entry.prefix] = entry
    conf.registries = list(by_prefix.values())
    return conf


def _read(file: str) -> dict:
    import tomllib

    try:
        with open(file, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"loading registries configuration {file!r}: {exc}") from None


def _entries(data: dict, file: str) -> list[RegistryEntry]:
    tables = data.get("registry", [])
    if not isinstance(tables, list):
        raise InvalidArgument(f"{file}: [[registry]] must be an array of tables")
    out = []
    for table in tables:
        if not isinstance(table, dict):
            raise InvalidArgument(f"{file}: [[registry]] must be an array of tables")
        location = table.get("location", "")
        prefix = table.get("prefix") or location
        if not isinstance(prefix, str) or not prefix or not isinstance(location, str):
            raise InvalidArgument(f"{file}: each [[registry]] needs a location or a prefix")
        out.append(RegistryEntry(prefix.rstrip("/"), location.rstrip("/"), bool(table.get("insecure", False)),
                                 bool(table.get("blocked", False)), _mirrors(table.get("mirror", []), file)))
    # v1 syntax: [registries.insecure] registries = [...], [registries.search], [registries.block]
    v1 = data.get("registries", {})
    if isinstance(v1, dict) and v1:
        for kind in ("insecure", "block"):
            for host in _strings(v1.get(kind, {}).get("registries", []), file, f"registries.{kind}"):
                out.append(RegistryEntry(host, host, insecure=kind == "insecure", blocked=kind == "block"))
        if "search" in v1:
            data["unqualified-search-registries"] = v1["search"].get("registries", [])
    return out


def _mirrors(tables: object, file: str) -> tuple[Mirror, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) and isinstance(t.get("location"), str)
                                                and t["location"] for t in tables):
        raise InvalidArgument(f"{file}: [[registry.mirror]] must be tables with a location")
    return tuple(Mirror(t["location"].rstrip("/"), bool(t.get("insecure", False))) for t in tables)


def _strings(value: object, file: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{file}: {key} must be a list of strings")
    return list(value)


def _matches(prefix: str, repository: str) -> bool:
    if prefix.startswith("*."):  # wildcard host: *.example.com matches a.example.com[/...]
        host = repository.split("/", 1)[0]
        return host.endswith(prefix[1:])
    return repository == prefix or repository.startswith(prefix + "/")
