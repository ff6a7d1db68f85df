"""Secrets: stored once (0600, never in inspect), given to containers as read-only files or
variables, refused removal while a container holds them; the CLI's secret commands."""

from __future__ import annotations

import json
import os
import stat

import pytest

from workbench import InvalidArgument, WorkbenchError
from workbench.engine.secrets import NoSuchSecret


def _out(rt, busybox, script: str, **options) -> str:
    result = rt.run(busybox, ["sh", "-c", script], remove=True, network="none", **options)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def test_a_secret_is_a_read_only_file_or_a_variable_and_stays_out_of_inspect(rt, busybox):
    secret = rt.secrets.create("dbpass", b"s3cr3t\n", {"team": "ml"})
    data_file = os.path.join(rt.root, "secrets", secret.id)
    assert stat.S_IMODE(os.stat(data_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(data_file)).st_mode) == 0o700
    assert _out(rt, busybox, "cat /run/secrets/dbpass; stat -c '%a %u' /run/secrets/dbpass; "
                             "echo x > /run/secrets/dbpass 2>/dev/null || echo read-only",
                secrets=["dbpass"]) == "s3cr3t\n444 0\nread-only\n"
    assert _out(rt, busybox, "stat -c '%a %u %g' /etc/db.pw", secrets=["dbpass,target=/etc/db.pw,uid=1000,gid=100,"
                                                                         "mode=0400"]) == "400 1000 100\n"
    assert _out(rt, busybox, "echo $DB_PASSWORD", secrets=["dbpass,type=env,target=DB_PASSWORD"]) == "s3cr3t\n"
    c = rt.create_container(busybox, ["true"], secrets=["dbpass,type=env"])
    doc = json.dumps(c.inspect())
    assert "s3cr3t" not in doc and c.inspect()["Config"]["Secrets"] == [{"ID": secret.id, "Name": "dbpass"}]
    with pytest.raises(WorkbenchError, match="is in use by container"):
        rt.secrets.remove("dbpass")
    c.remove()
    assert rt.secrets.remove("dbpass").id == secret.id and not os.path.exists(data_file)


def test_bad_secrets_are_refused(rt, busybox):
    for name, data, message in (("bad name", b"x", "invalid secret name"), ("empty", b"", "larger than 0"),
                                ("big", b"x" * 512_000, "less than 512000 bytes")):
        with pytest.raises(InvalidArgument, match=message):
            rt.secrets.create(name, data)
    rt.secrets.create("s", b"x")
    with pytest.raises(WorkbenchError, match="secret name in use"):
        rt.secrets.create("s", b"y")
    assert rt.secrets.data(rt.secrets.create("s", b"y", replace=True)) == b"y"
    for spec, error, message in (("nosuch", NoSuchSecret, 'no secret with name or id "nosuch"'),
                                 ("s,type=file", InvalidArgument, 'invalid --secret option "type=file"'),
                                 ("s,type=env,target=1X", InvalidArgument, "not an environment variable name"),
                                 ("s,type=env,mode=0400", InvalidArgument, "are for type=mount"),
                                 ("s,target=../../etc/x", InvalidArgument, 'must not contain ".."')):
        with pytest.raises(error, match=message):
            rt.create_container(busybox, ["true"], secrets=[spec])
    c = rt.create_container(busybox, ["true"], secrets=["s"])
    rt.db.execute("DELETE FROM secrets")  # gone behind the engine's back: the start says so
    with pytest.raises(WorkbenchError, match="secret s of container .* has been removed"):
        c.start()
