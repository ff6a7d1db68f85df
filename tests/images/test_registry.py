"""Pull and push against a real registry (Debian's docker-registry), with skopeo as the other client."""

from __future__ import annotations

import json
import os

import pytest

from workbench.engine.errors import InvalidArgument, NoSuchImage
from workbench.engine.images import transfer
from workbench.engine.images.registry import ManifestUnknown, RegistryError


def _events(kind: str, events: list, status: str | None = None) -> list:
    return [e for e in events if e.kind == kind and (status is None or e.status == status)]


def test_pull_of_a_skopeo_pushed_image_runs(rt, pushed_busybox):
    ref, built = pushed_busybox
    events: list = []
    image = transfer.pull(rt, ref, tls_verify=False, progress=events.append)
    assert image.names == [ref]
    assert image.digest == built.digest
    assert image.inspect()["RepoDigests"] == [f"{ref.rsplit(':', 1)[0]}@{built.digest}"]
    assert image.inspect()["ManifestType"] == "application/vnd.oci.image.manifest.v1+json"  # skopeo pushed OCI
    assert events[0].kind == "resolve" and events[-1].kind == "done"
    assert any(e.done_bytes == e.total_bytes == len(built.blobs[0]) for e in _events("blob", events))
    assert rt.run(ref, ["echo", "hi"], remove=True).stdout == b"hi\n"
    repository, path = ref.rsplit(":", 1)[0], ref.split("/", 1)[1].rsplit(":", 1)[0]
    for by_digest in (f"{repository}@{built.digest}", f"{path}@{built.digest}"):  # full, and short
        assert rt.image(by_digest).id == image.id
    for wrong in (f"{repository}@sha256:{'0' * 64}", f"other/name@{built.digest}"):
        with pytest.raises(NoSuchImage):
            rt.image(wrong)


def test_pull_by_digest_checks_and_keeps_the_digest(kit, rt, pushed_busybox):
    ref, built = pushed_busybox
    image = transfer.pull(rt, f"{ref.rsplit(':', 1)[0]}@{built.digest}", tls_verify=False)
    assert image.digest == built.digest and image.id == kit.sha256(built.config)[7:]
    assert image.names == []  # a digest names no tag


def test_push_is_pulled_by_skopeo_with_the_same_digests(kit, rt, busybox, registry, tmp_path):
    ref = f"{registry.host}/{kit.unique('test/pushed')}:v1"
    events: list = []
    digest = transfer.push(rt, busybox, ref, tls_verify=False, progress=events.append)
    kit.skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path}/out:x")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    manifest = json.loads((tmp_path / "out" / "blobs" / "sha256" / digest[7:]).read_bytes())
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["digest"] == "sha256:" + rt.image(busybox).id
    assert _events("manifest", events) and events[-1] == transfer.ProgressEvent("done", digest)


def test_push_v2s2_and_pull_it_back(kit, rt, busybox, registry, tmp_path):
    ref = f"{registry.host}/{kit.unique('test/docker')}:v1"
    digest = transfer.push(rt, busybox, ref, tls_verify=False, format="v2s2")
    raw = json.loads(kit.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert raw["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    from workbench import Runtime

    with Runtime(str(tmp_path / "root2"), str(tmp_path / "run2")) as fresh:
        image = transfer.pull(fresh, ref, tls_verify=False)
        assert image.id == rt.image(busybox).id and image.digest == digest
        assert image.inspect()["ManifestType"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_push_skips_existing_blobs_and_mounts_across_repositories(kit, rt, busybox, registry):
    first = f"{registry.host}/{kit.unique('test/a')}:v1"
    transfer.push(rt, busybox, first, tls_verify=False)
    again: list = []
    transfer.push(rt, busybox, first, tls_verify=False, progress=again.append)
    assert len(_events("blob", again, "skipped")) == 2  # layer and config
    other: list = []
    transfer.push(rt, busybox, f"{registry.host}/{kit.unique('test/b')}:v1", tls_verify=False, progress=other.append)
    assert len(_events("blob", other, "mounted")) == 1


def test_pull_skips_layers_already_stored(rt, busybox, pushed_busybox):
    events: list = []
    transfer.pull(rt, pushed_busybox[0], tls_verify=False, progress=events.append)
    assert len(_events("blob", events, "skipped")) == 1  # the imported busybox has the same layer


def test_zstd_layer(kit, rt, registry, busybox_layer, tmp_path):
    ref = f"{registry.host}/{kit.unique('test/zstd')}:latest"
    kit.skopeo("copy", "-q", "--dest-tls-verify=false", kit.layout(str(tmp_path), [kit.Built([busybox_layer], "zstd")]),
           f"docker://{ref}")
    image = transfer.pull(rt, ref, tls_verify=False)
    assert rt.run(image.id, ["echo", "zstd"], remove=True).stdout == b"zstd\n"


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_index_platform_selection(kit, rt, registry, busybox_layer, tmp_path, fmt):
    ref = f"{registry.host}/{kit.unique('test/multi')}:latest"
    layout = kit.layout(str(tmp_path), [kit.Built([busybox_layer], arch=a, labels={"arch": a})
                                              for a in ("amd64", "arm64")], index=True)
    kit.skopeo("copy", "-q", "--all", "--format", fmt, "--dest-tls-verify=false", layout, f"docker://{ref}")
    raw = json.loads(kit.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)
    assert "manifest.list" in raw["mediaType"] if fmt == "v2s2" else "index" in raw["mediaType"]
    arm = transfer.pull(rt, ref, tls_verify=False, platform="linux/arm64")
    assert arm.config["architecture"] == "arm64" and arm.container_config["Labels"] == {"arch": "arm64"}
    native = transfer.pull(rt, ref, tls_verify=False)
    assert native.config["architecture"] == {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    with pytest.raises(RegistryError, match='no image found in image index for architecture s390x, variant "", OS linux'):
        transfer.pull(rt, ref, tls_verify=False, platform="linux/s390x")


def test_insecure_registry_from_registries_conf(rt, pushed_busybox, registries_conf):
    ref, _ = pushed_busybox
    with pytest.raises(RegistryError, match="pinging container registry"):
        transfer.pull(rt, ref)  # TLS by default: the plain-HTTP registry fails
    registries_conf(f'[[registry]]\nlocation = "{ref.split("/")[0]}"\ninsecure = true\n')
    assert transfer.pull(rt, ref).names == [ref]
    with pytest.raises(RegistryError, match="pinging container registry"):
        transfer.pull(rt, ref, tls_verify=True)  # the flag wins over the file


def test_a_registries_conf_location_rewrites_where_a_repository_is_pulled_from(rt, pushed_busybox, registries_conf):
    ref, built = pushed_busybox
    host, path = ref.split("/", 1)
    namespace = path.split("/", 1)[0]
    registries_conf(f'[[registry]]\nprefix = "lab.example/{namespace}"\nlocation = "{host}/{namespace}"\n'
                    f'insecure = true\n')
    wanted = f"lab.example/{path}"
    image = transfer.pull(rt, wanted)
    assert image.names == [wanted] and image.digest == built.digest  # named as asked, fetched from the location


def test_mirrors_are_tried_first_and_a_dead_one_is_skipped(rt, pushed_busybox, registries_conf):
    ref, built = pushed_busybox
    host, path = ref.split("/", 1)
    registries_conf('[[registry]]\nlocation = "primary.invalid"\n'
                    '[[registry.mirror]]\nlocation = "127.0.0.1:9"\ninsecure = true\n'  # nothing listens there
                    f'[[registry.mirror]]\nlocation = "{host}"\ninsecure = true\n')
    image = transfer.pull(rt, f"primary.invalid/{path}")
    assert image.names == [f"primary.invalid/{path}"] and image.digest == built.digest
    registries_conf('[[registry]]\nlocation = "primary.invalid"\n'
                    '[[registry.mirror]]\nlocation = "127.0.0.1:9"\ninsecure = true\n')
    with pytest.raises(RegistryError, match="every source failed: 127.0.0.1:9/.*; primary.invalid/"):
        transfer.pull(rt, f"primary.invalid/{path.rsplit(':', 1)[0]}:other")


def test_short_name_resolves_through_unqualified_search_registries(rt, pushed_busybox, registries_conf):
    ref, _ = pushed_busybox
    host, path = ref.split("/", 1)
    registries_conf(f'unqualified-search-registries = ["{host}"]\n')
    assert transfer.pull(rt, path, tls_verify=False).names == [ref]


def test_short_name_without_search_registries(rt, registries_conf):
    path = registries_conf("")
    with pytest.raises(InvalidArgument, match=f'short-name "nosuchimage" did not resolve to an alias and no '
                                              f'unqualified-search registries are defined in "{path}"'):
        transfer.pull(rt, "nosuchimage")


def test_unknown_image_is_a_clear_error(kit, rt, registry):
    before = kit.state(rt)
    with pytest.raises(ManifestUnknown, match=f"reading manifest latest in {registry.host}/nope/nothing: manifest unknown"):
        transfer.pull(rt, f"{registry.host}/nope/nothing", tls_verify=False)
    assert kit.state(rt) == before


@pytest.mark.parametrize("reference, match", [
    ("UPPER/case", "invalid reference format"), ("a:b:c", "invalid reference format"),
    ("x@sha256:123", "invalid reference format"), ("", "invalid reference format"),
    ("127.0.0.1:port/x", "invalid registry host"),
])
def test_malformed_reference(rt, reference, match):
    before = os.listdir(rt.root)
    with pytest.raises(InvalidArgument, match=match):
        transfer.pull(rt, reference, tls_verify=False)
    assert os.listdir(rt.root) == before


def test_unreachable_registry(rt):
    with pytest.raises(RegistryError, match=r"pinging container registry 127.0.0.1:9: .*connection refused"):
        transfer.pull(rt, "127.0.0.1:9/some/image", tls_verify=False)


def test_cli_pull_push_and_errors(kit, cli, pushed_busybox, registry):
    ref, _ = pushed_busybox
    pulled = cli("pull", "--tls-verify=false", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert "Copying blob" in pulled.stderr and "Writing manifest" in pulled.stderr
    pushed = cli("push", "--tls-verify=false", ref, f"{registry.host}/{kit.unique('test/cli')}:v1")
    assert pushed.returncode == 0, pushed.stderr
    missing = cli("pull", "--tls-verify=false", f"{registry.host}/nope/x")
    assert missing.returncode == 125
    assert f"Error: reading manifest latest in {registry.host}/nope/x: manifest unknown" in missing.stderr


def test_run_pulls_a_missing_image_as_its_pull_policy_says(cli, pushed_busybox):
    ref, _ = pushed_busybox
    proc = cli("run", "--rm", "--pull", "never", ref, "true")
    assert (proc.returncode, proc.stderr) == (125, f"Error: {ref}: image not known\n")
    proc = cli("run", "--rm", "--tls-verify=false", ref, "echo", "pulled")  # missing: pulled first
    assert (proc.returncode, proc.stdout) == (0, "pulled\n"), proc.stderr
    assert f"Trying to pull {ref}..." in proc.stderr and "Copying blob" in proc.stderr
    proc = cli("run", "--rm", "--tls-verify=false", ref, "true")  # present: not pulled again
    assert proc.returncode == 0 and proc.stderr == ""
    proc = cli("create", "-q", "--pull", "always", "--tls-verify=false", ref, "true")
    assert proc.returncode == 0 and proc.stderr == "" and len(proc.stdout.strip()) == 64
    proc = cli("run", "--rm", "--pull", "always", ref, "true")  # the registry wants --tls-verify=false
    assert proc.returncode == 125 and "Trying to pull" in proc.stderr
    assert cli("run", "--rm", "--pull", "newer", ref, "true").returncode == 0  # the failed pull is no error
