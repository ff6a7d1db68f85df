"""`build`: an image from a Containerfile (Dockerfile) and a context directory.

One build container runs the steps: its PID 1 is catatonit in pause mode (so no base image needs a
`sleep`), RUN steps are exec sessions with the build's environment, user and working directory,
COPY/ADD copy from the context, resolved inside it (nothing outside the context can be read, a
symlink in it is rebased there). Metadata steps (ENV, CMD, LABEL, ...) change the image config as
`commit --change` does. At the end the container's changes become one layer over the base image,
with one history line per step (Podman's `--layers=false`), and the container is removed.

Single-stage builds: FROM, ARG, ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK,
CMD, ENTRYPOINT, RUN, COPY, ADD (local files, like COPY). Anything else is refused by name.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument, WorkbenchError
from .records import NamedTuple

if TYPE_CHECKING:
    from .images.store import Image
    from .runtime import Runtime

Output = Callable[[str, bytes], None]  # (stream, data)

_METADATA = {"ENV", "LABEL", "EXPOSE", "VOLUME", "STOPSIGNAL", "CMD", "ENTRYPOINT", "HEALTHCHECK"}
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class Step(NamedTuple):
    instruction: str  # upper case
    value: str  # the rest of the line, continuation lines joined
    line: int

    def __str__(self) -> str:
        return f"{self.instruction} {self.value}"


def parse(text: str) -> list[Step]:
    """The steps of a Containerfile: comments and blank lines dropped, `\\` continuations joined."""
    steps, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        steps.append(Step(word.upper(), rest.strip(), start))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        steps.append(Step(word.upper(), rest.strip(), start))
    return steps


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`$VAR`, `${VAR}` and `${VAR:-default}` from the build's ARG and ENV values."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(3)) or (m.group(2) or ""), text)


def build(rt: Runtime, context: str, *, containerfile: str | None = None, tags: Sequence[str] = (),
          build_args: Mapping[str, str] | None = None, network: str = "bridge",
          output: Output | None = None) -> Image:
    """Build an image; `output` gets Podman's STEP lines and what RUN steps print."""
    context = os.path.abspath(context)
    if not os.path.isdir(context):
        raise InvalidArgument(f"build context {context} is not a directory")
    path = containerfile or _default_file(context)
    try:
        with open(path, encoding="utf-8") as f:
            steps = parse(f.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"reading {path}: {getattr(exc, 'strerror', None) or exc}") from None
    say = output or (lambda stream, data: None)
    args = dict(build_args or {})
    variables: dict[str, str] = {}
    while steps and steps[0].instruction == "ARG":  # ARGs before FROM parameterise the FROM line
        _arg(steps.pop(0).value, args, variables)
    if not steps or steps[0].instruction != "FROM":
        raise InvalidArgument(f"{path}: the first instruction must be FROM (after ARGs)")
    for step in steps[1:]:
        if step.instruction == "FROM":
            raise InvalidArgument(f"{path}:{step.line}: multi-stage builds (a second FROM) are not supported yet")
    from_words = expand(steps[0].value, variables).split()
    if len(from_words) != 1:
        raise InvalidArgument(f"{path}:{steps[0].line}: FROM takes one image (FROM IMAGE AS NAME is multi-stage)")
    base = rt.image(from_words[0])
    config: dict[str, Any] = json.loads(json.dumps(base.container_config))  # a deep copy
    variables = {**variables, **_env_dict(config.get("Env") or [])}
    total = len(steps)
    say("stdout", f"STEP 1/{total}: FROM {from_words[0]}\n".encode())
    c = rt.create_container(base, ["/run/podman-init", "-P"], entrypoint=[], init=True, network=network,
                            name=None, labels={"io.workbench.build": "1"})
    try:
        c.start()
        with _open_dir(context) as context_fd:
            for number, step in enumerate(steps[1:], 2):
                say("stdout", f"STEP {number}/{total}: {step}\n".encode())
                _run_step(c, step, config, args, variables, context_fd, say)
        names = list(tags)
        image = c.batch(lambda c: _commit(c, names[0] if names else None, config, [str(s) for s in steps]))
        if len(names) > 1:
            rt.tag_image(image.id, *names[1:])
        image = rt.image(image.id)
        say("stdout", f"COMMIT {names[0] if names else ''}\n--> {image.id[:12]}\n".encode())
        for name in image.names:
            say("stdout", f"Successfully tagged {name}\n".encode())
        return image
    finally:
        try:
            c.remove(force=True, timeout=0)
        except WorkbenchError:
            pass


def _default_file(context: str) -> str:
    for name in ("Containerfile", "Dockerfile"):
        candidate = os.path.join(context, name)
        if os.path.isfile(candidate):
            return candidate
    raise InvalidArgument(f"no Containerfile or Dockerfile in {context}: give one with -f")


class _open_dir:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _run_step(c: Any, step: Step, config: dict[str, Any], args: dict[str, str], variables: dict[str, str],
              context_fd: int, say: Output) -> None:
    from .images.store import apply_changes

    kind, value = step.instruction, step.value
    if kind == "RUN":
        _run(c, step, config, args, say)
    elif kind in ("COPY", "ADD"):
        _copy(c, step, expand(value, variables), config, context_fd)
    elif kind == "ARG":
        _arg(value, args, variables)
    elif kind == "WORKDIR":
        workdir = posixpath.join(config.get("WorkingDir") or "/", expand(value, variables))
        config["WorkingDir"] = posixpath.normpath(workdir)
        from .copy import make_dirs

        make_dirs(c, config["WorkingDir"])
    elif kind == "USER":
        config["User"] = expand(value, variables)
    elif kind in _METADATA:
        line = value if kind in ("CMD", "ENTRYPOINT", "HEALTHCHECK") else expand(value, variables)
        if kind == "ENTRYPOINT":
            config.pop("Cmd", None)  # as Docker: a new entrypoint drops the base's CMD (a later CMD sets one)
        try:
            apply_changes(config, [f"{kind} {line}"])
        except InvalidArgument as exc:
            raise InvalidArgument(f"line {step.line}: {exc}") from None
        if kind == "ENV":
            variables.update(_env_dict(config.get("Env") or []))
    else:
        raise InvalidArgument(f"line {step.line}: {kind} is not supported by this build (supported: FROM, ARG, "
                              "ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, CMD, ENTRYPOINT, RUN, "
                              "COPY, ADD)")


def _run(c: Any, step: Step, config: dict[str, Any], args: dict[str, str], say: Output) -> None:
    value = step.value
    command = None
    if value.startswith("["):
        try:
            parsed = json.loads(value)
            command = parsed if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) else None
        except ValueError:
            command = None
    if command is None:
        command = ["/bin/sh", "-c", value]
    env = [*(config.get("Env") or []), *(f"{k}={v}" for k, v in args.items())]
    with c.exec_session(command, tty=False, stdin=False, env=env, user=config.get("User") or None,
                        workdir=config.get("WorkingDir") or "/") as session:
        for stream, data in session:
            say(stream, data)
        code = session.wait()
    if code != 0:
        raise WorkbenchError(f'building at STEP "{step}": while running runtime: exit status {code}')


def _copy(c: Any, step: Step, value: str, config: dict[str, Any], context_fd: int) -> None:
    from .copy import copy_from_tree

    words = json.loads(value) if value.startswith("[") else shlex.split(value)
    if any(w.startswith("--") for w in words):
        raise InvalidArgument(f"line {step.line}: {step.instruction} options ({words[0]}) are not supported yet")
    if len(words) < 2:
        raise InvalidArgument(f"line {step.line}: {step.instruction} needs a source and a destination")
    *sources, destination = words
    if not destination.startswith("/"):
        destination = posixpath.join(config.get("WorkingDir") or "/", destination)
    into_dir = len(sources) > 1 or destination.endswith("/")
    for source in sources:
        if step.instruction == "ADD" and re.match(r"^[a-z]+://", source):
            raise InvalidArgument(f"line {step.line}: ADD from a URL is not supported: fetch it with RUN")
        if step.instruction == "ADD" and re.search(r"\.(tar|tgz|tar\.(gz|bz2|xz|zst))$", source):
            raise InvalidArgument(f"line {step.line}: ADD of an archive (unpacking it) is not supported yet: "
                                  "COPY it and RUN tar -x")
        is_dir = _is_dir_in(context_fd, source)
        if is_dir:  # a directory's contents, as Docker copies them
            copy_from_tree(c, context_fd, source.rstrip("/") + "/.", destination, parents=destination)
        elif into_dir:
            copy_from_tree(c, context_fd, source, destination.rstrip("/") + "/", parents=destination)
        else:
            copy_from_tree(c, context_fd, source, destination, parents=posixpath.dirname(destination))


def _is_dir_in(root_fd: int, path: str) -> bool:
    from .storage.rootpath import UnsafePath, open_in_root

    try:
        os.close(open_in_root(root_fd, path.strip("/") or ".", os.O_RDONLY | os.O_DIRECTORY, follow=True))
        return True
    except (OSError, UnsafePath):
        return False


def _arg(value: str, args: dict[str, str], variables: dict[str, str]) -> None:
    name, sep, default = value.partition("=")
    name = name.strip()
    if name not in args and sep:
        args[name] = expand(default, variables)
    if name in args:
        variables[name] = args[name]


def _env_dict(env: Sequence[str]) -> dict[str, str]:
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)


def _commit(c: Any, name: str | None, config: dict[str, Any], steps: list[str]) -> Image:
    from .filesystem import commit

    return commit(c, name, changes=(), message="", author="", pause=True, timestamp=None,
                  image_config={k: v for k, v in config.items() if v is not None}, steps=steps)
