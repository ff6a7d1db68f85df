"""Restart policies (`--restart`): a container whose process exits on its own is started again.

As Podman without systemd: the policy is applied where an exited container is cleaned up (the
exit command conmon runs, or the process waiting for the container), never after a stop or a
kill by the user. `always` and `unless-stopped` restart after any exit, `on-failure[:N]` after a
non-zero exit code, at most N times (no limit without N). A start or restart by the user counts
again from zero.
"""

from __future__ import annotations

from .errors import InvalidArgument
from .state import ContainerState as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .container import Container

POLICIES = ("", "no", "on-failure", "always", "unless-stopped")


def parse(text: str | None) -> tuple[str, int]:
    """`--restart` as (policy, retries): "on-failure:3" -> ("on-failure", 3); Podman's messages."""
    if not text:
        return "", 0
    policy, *rest = text.split(":")
    retries = 0
    if len(rest) > 1:
        raise InvalidArgument("invalid restart policy: may specify retries at most once")
    if rest:
        if policy != "on-failure":
            raise InvalidArgument("restart policy retries can only be specified with on-failure restart policy")
        try:
            retries = int(rest[0])
        except ValueError:
            raise InvalidArgument(f'parsing restart policy retry count: "{rest[0]}" is not a number') from None
        if retries < 0:
            raise InvalidArgument("must specify restart policy retry count as a number greater than 0")
    if policy not in POLICIES:
        raise InvalidArgument(f'"{policy}" is not a valid restart policy: use no, on-failure[:N], always or '
                              "unless-stopped")
    return policy, retries


def applies(c: "Container") -> bool:
    """Whether the container, stopped and not yet cleaned up, is to be started again now."""
    policy = c.config.restart_policy
    if c.st.state != S.STOPPED or c.st.stopped_by_user or policy in ("", "no"):
        return False
    if policy == "on-failure":
        retries = c.config.restart_retries
        return c.st.exit_code != 0 and not (retries and c.st.restart_count >= retries)
    return True


def restart_if_due(c: "Container") -> bool:
    """Podman's handleRestartPolicy, with the container locked: clean up and start again when the
    policy says so, counting the restart; False (nothing done) otherwise."""
    if not applies(c):
        return False
    from . import events, lifecycle

    c.st.restart_count += 1
    events.container(c, "restart")
    lifecycle.cleanup(c)
    lifecycle.start(c, retain_retries=True)
    return True
