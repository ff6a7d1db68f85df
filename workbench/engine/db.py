"""SQLite state store: containers, exec sessions, exit codes, images, image names, layers, networks and
IP leases (WAL, versioned schema)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time

from .errors import ContainerExists

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, Sequence

SCHEMA_VERSION = 5  # 2: exec_sessions; 3: networks, ip_leases; 4: volumes; 5: secrets

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exec_sessions (
    id TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS exec_sessions_by_container ON exec_sessions (container_id);
CREATE TABLE IF NOT EXISTS exit_codes (
    id TEXT PRIMARY KEY,
    code INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    meta TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_names (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS layers (
    id TEXT PRIMARY KEY,
    parent TEXT,
    diff_id TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ip_leases (
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    address TEXT NOT NULL,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    PRIMARY KEY (network, address),
    UNIQUE (network, container_id)
);
"""

#: Exit codes of removed containers are kept this long for `wait` (libpod: 5 minutes).
EXIT_CODE_TTL = 300.0


class Database:
    """One connection to `<graph root>/state.db`, safe to share between threads of a process."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        fresh = not os.path.exists(path)
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        if fresh:
            os.chmod(path, 0o600)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: schema version {version} is newer than this Workbench ({SCHEMA_VERSION})")
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._conn.execute("PRAGMA journal_mode = WAL")
        with self.transaction() as cur:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction (BEGIN IMMEDIATE), committed on success, rolled back on error."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    # -- containers ---------------------------------------------------------
    def add_container(self, cur: sqlite3.Cursor, ctr_id: str, name: str, config: dict, state: dict,
                      created: float) -> None:
        """Insert a container row inside `cur`'s transaction; a taken name is ContainerExists."""
        try:
            cur.execute("INSERT INTO containers (id, name, config, state, created) VALUES (?, ?, ?, ?, ?)",
                        (ctr_id, name, json.dumps(config), json.dumps(state), created))
        except sqlite3.IntegrityError:
            owner = cur.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            raise ContainerExists(name, owner[0] if owner else "another container") from None

    def container_row(self, ctr_id: str) -> tuple[dict, dict] | None:
        rows = self.query("SELECT config, state FROM containers WHERE id = ?", (ctr_id,))
        if not rows:
            return None
        return json.loads(rows[0][0]), json.loads(rows[0][1])

    def container_state(self, ctr_id: str) -> dict | None:
        rows = self.query("SELECT state FROM containers WHERE id = ?", (ctr_id,))
        return json.loads(rows[0][0]) if rows else None

    def rename_container(self, ctr_id: str, name: str, config: dict) -> None:
        """Give a container a new name; a taken one is ContainerExists."""
        with self.transaction() as cur:
            try:
                cur.execute("UPDATE containers SET name = ?, config = ? WHERE id = ?", (name, json.dumps(config), ctr_id))
            except sqlite3.IntegrityError:
                owner = cur.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
                raise ContainerExists(name, owner[0] if owner else "another container") from None

    def save_config(self, ctr_id: str, config: dict) -> bool:
        return self.execute("UPDATE containers SET config = ? WHERE id = ?", (json.dumps(config), ctr_id)) == 1

    def save_state(self, ctr_id: str, state: dict) -> bool:
        return self.execute("UPDATE containers SET state = ? WHERE id = ?", (json.dumps(state), ctr_id)) == 1

    def container_ids(self) -> list[tuple[str, str]]:
        """(id, name) of every container, oldest first."""
        return self.query("SELECT id, name FROM containers ORDER BY created")

    def all_containers(self, ids: Sequence[str] | None = None) -> list[tuple[dict, dict]]:
        """(config, state) of every container, or of those with these full `ids`, oldest first."""
        if ids is not None and not ids:
            return []
        where = f" WHERE id IN ({','.join('?' * len(ids))})" if ids is not None else ""
        rows = self.query(f"SELECT config, state FROM containers{where} ORDER BY created", tuple(ids or ()))
        return [(json.loads(c), json.loads(s)) for c, s in rows]

    def lookup_container(self, name_or_id: str) -> list[str]:
        """IDs matching an exact name, an exact ID, or an ID prefix (in that order of precedence)."""
        rows = self.query("SELECT id FROM containers WHERE name = ? OR id = ?", (name_or_id, name_or_id))
        if rows:
            return [rows[0][0]]
        if not name_or_id or not all(c in "0123456789abcdef" for c in name_or_id):
            return []
        rows = self.query("SELECT id FROM containers WHERE id >= ? AND id < ?", (name_or_id, name_or_id + "g"))
        return [r[0] for r in rows]

    # -- exec sessions ------------------------------------------------------
    def add_exec_session(self, session_id: str, ctr_id: str, data: dict) -> None:
        self.execute("INSERT INTO exec_sessions (id, container_id, data, created) VALUES (?, ?, ?, ?)",
                     (session_id, ctr_id, json.dumps(data), time.time()))

    def save_exec_session(self, session_id: str, data: dict) -> bool:
        return self.execute("UPDATE exec_sessions SET data = ? WHERE id = ?", (json.dumps(data), session_id)) == 1

    def exec_session(self, session_id: str) -> dict | None:
        rows = self.query("SELECT data FROM exec_sessions WHERE id = ?", (session_id,))
        return json.loads(rows[0][0]) if rows else None

    def exec_sessions(self, ctr_id: str) -> list[dict]:
        """The container's exec sessions, oldest first."""
        rows = self.query("SELECT data FROM exec_sessions WHERE container_id = ? ORDER BY created", (ctr_id,))
        return [json.loads(r[0]) for r in rows]

    def remove_exec_session(self, session_id: str) -> None:
        self.execute("DELETE FROM exec_sessions WHERE id = ?", (session_id,))

    # -- exit codes ---------------------------------------------------------
    def set_exit_code(self, ctr_id: str, code: int) -> None:
        self.execute("INSERT OR REPLACE INTO exit_codes (id, code, at) VALUES (?, ?, ?)", (ctr_id, code, time.time()))

    def exit_code(self, ctr_id: str) -> int | None:
        rows = self.query("SELECT code FROM exit_codes WHERE id = ?", (ctr_id,))
        return rows[0][0] if rows else None

    def prune_exit_codes(self) -> None:
        self.execute(
            "DELETE FROM exit_codes WHERE at < ? AND id NOT IN (SELECT id FROM containers)",
            (time.time() - EXIT_CODE_TTL,),
        )

    # -- images and layers ----------------------------------------------------
    def add_layer(self, cur: sqlite3.Cursor, layer_id: str, parent: str | None, diff_id: str | None,
                  size: int, kind: str) -> None:
        cur.execute(
            "INSERT OR IGNORE INTO layers (id, parent, diff_id, size, kind) VALUES (?, ?, ?, ?, ?)",
            (layer_id, parent, diff_id, size, kind),
        )

    def layer(self, layer_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT id, parent, diff_id, size, kind FROM layers WHERE id = ?", (layer_id,))
        if not rows:
            return None
        return dict(zip(("id", "parent", "diff_id", "size", "kind"), rows[0]))
