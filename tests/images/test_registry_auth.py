"""login/logout and authenticated pull/push against docker-registry with htpasswd (basic) auth."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from workbench import Runtime
from workbench.engine.images import transfer
from workbench.engine.images.auth import NotLoggedIn
from workbench.engine.images.registry import AuthenticationError


def test_login_with_a_wrong_password_is_refused(kit, auth_registry, auth_file):
    with pytest.raises(AuthenticationError, match=f'logging into "{auth_registry.host}": invalid username/password'):
        transfer.login(auth_registry.host, kit.USER, "wrong", tls_verify=False)
    assert not os.path.exists(auth_file)


def test_login_stores_credentials_0600_and_logout_removes_them(kit, auth_registry, auth_file, registries_conf):
    registries_conf(f'[[registry]]\nlocation = "{auth_registry.host}"\ninsecure = true\n')
    transfer.login(auth_registry.host, kit.USER, kit.PASSWORD)
    assert stat.S_IMODE(os.stat(auth_file).st_mode) == 0o600
    token = base64.b64encode(f"{kit.USER}:{kit.PASSWORD}".encode()).decode()
    with open(auth_file) as f:
        assert json.load(f) == {"auths": {auth_registry.host: {"auth": token}}}
    transfer.logout(auth_registry.host)
    with open(auth_file) as f:
        assert json.load(f) == {"auths": {}}
    with pytest.raises(NotLoggedIn, match=f"not logged into {auth_registry.host}"):
        transfer.logout(auth_registry.host)


def test_logout_all(kit, auth_registry, auth_file):
    transfer.login(auth_registry.host, kit.USER, kit.PASSWORD, tls_verify=False)
    transfer.login(f"{auth_registry.host}/some/namespace", kit.USER, kit.PASSWORD, tls_verify=False)
    transfer.logout(None, all=True)
    with open(auth_file) as f:
        assert json.load(f)["auths"] == {}


def test_push_and_pull_with_a_stored_login(kit, rt, busybox, auth_registry, auth_file, tmp_path):
    ref = f"{auth_registry.host}/{kit.unique('private/busybox')}:v1"
    transfer.login(auth_registry.host, kit.USER, kit.PASSWORD, auth_file=auth_file, tls_verify=False)
    digest = transfer.push(rt, busybox, ref, tls_verify=False, auth_file=auth_file)
    with Runtime(str(tmp_path / "root2"), str(tmp_path / "run2")) as fresh:
        assert transfer.pull(fresh, ref, tls_verify=False, auth_file=auth_file).digest == digest
        transfer.logout(auth_registry.host, auth_file=auth_file)
        before = kit.state(fresh)
        with pytest.raises(AuthenticationError, match="unauthorized: authentication required"):
            transfer.pull(fresh, ref, tls_verify=False, auth_file=auth_file)
        assert kit.state(fresh) == before


def test_credentials_argument_with_a_skopeo_pushed_image(kit, rt, auth_registry, busybox_layer, tmp_path):
    ref = f"{auth_registry.host}/{kit.unique('private/skopeo')}:latest"
    kit.skopeo("copy", "-q", "--dest-tls-verify=false", f"--dest-creds={kit.USER}:{kit.PASSWORD}",
               kit.layout(str(tmp_path), [kit.Built([busybox_layer])]), f"docker://{ref}")
    before = kit.state(rt)
    with pytest.raises(AuthenticationError):
        transfer.pull(rt, ref, tls_verify=False, credentials=(kit.USER, "wrong"))
    assert kit.state(rt) == before
    image = transfer.pull(rt, ref, tls_verify=False, credentials=(kit.USER, kit.PASSWORD))
    assert rt.run(image.id, ["echo", "private"], remove=True).stdout == b"private\n"


def test_skopeo_pulls_what_workbench_pushed_with_credentials(kit, rt, busybox, auth_registry):
    ref = f"{auth_registry.host}/{kit.unique('private/pushed')}:v1"
    with pytest.raises(AuthenticationError):
        transfer.push(rt, busybox, ref, tls_verify=False)  # anonymous
    digest = transfer.push(rt, busybox, ref, tls_verify=False, credentials=(kit.USER, kit.PASSWORD))
    out = kit.skopeo("inspect", "--tls-verify=false", f"--creds={kit.USER}:{kit.PASSWORD}", f"docker://{ref}")
    assert json.loads(out.stdout)["Digest"] == digest
