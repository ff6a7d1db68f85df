"""The Jupyter server side of the console widget: kernel WebSockets that send at once.

jupyter_server leaves Nagle's algorithm on for its kernel WebSockets. A console keystroke's echo
is a small message that often follows another (the kernel's "busy" status), so it waits for the
browser's delayed ACK: about 40 ms per keystroke. This server extension (enabled by the
`jupyter_server_config.d/workbench.json` the package installs) swaps in the default connection
class with TCP_NODELAY set; a server configured with a connection class of its own keeps it.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "workbench.widgets.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    class NoDelayConnection(ZMQChannelsWebsocketConnection):
        """The default kernel WebSocket connection, sending each message without delay."""

        def connect(self) -> Any:
            self.websocket_handler.set_nodelay(True)
            return super().connect()

    settings = serverapp.web_app.settings
    if settings.get("kernel_websocket_connection_class") is ZMQChannelsWebsocketConnection:
        settings["kernel_websocket_connection_class"] = NoDelayConnection
        serverapp.log.debug("workbench: kernel WebSockets send without Nagle's delay (TCP_NODELAY)")
    else:
        serverapp.log.info("workbench: kernel WebSocket connection class %s kept (no TCP_NODELAY)",
                           settings.get("kernel_websocket_connection_class"))
