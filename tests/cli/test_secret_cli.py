"""The secret commands: create (from a file, standard input or a variable), ls, inspect, rm, exists,
and --secret on run."""

from __future__ import annotations


def test_secret_commands(cli, image, monkeypatch):
    created = cli("secret", "create", "api-key", "-", input="k-123")
    assert created.returncode == 0 and len(created.stdout.strip()) == 25
    monkeypatch.setenv("TOKEN", "t-456")
    assert cli("secret", "create", "--env", "token", "TOKEN").returncode == 0
    assert cli("secret", "ls", "--format", "{{.Name}}").stdout == "api-key\ntoken\n"
    assert cli("secret", "inspect", "--format", "{{.Spec.Name}} {{.ID}}", "api-key").stdout == \
        f"api-key {created.stdout.strip()}\n"
    assert cli("run", "--rm", "--secret", "api-key", "--secret", "token,type=env,target=TOKEN", image, "sh", "-c",
               "cat /run/secrets/api-key; echo; echo $TOKEN").stdout == "k-123\nt-456\n"
    assert cli("secret", "exists", "token").returncode == 0
    token_id = cli("secret", "inspect", "--format", "{{.ID}}", "token").stdout
    assert cli("secret", "rm", "token").stdout == token_id
    assert cli("secret", "rm", "-a").stdout == created.stdout
    assert cli("secret", "exists", "token").returncode == 1 and cli("secret", "ls", "-q").stdout == ""
    proc = cli("secret", "rm", "token")
    assert proc.returncode == 125 and 'no secret with name or id "token"' in proc.stderr
