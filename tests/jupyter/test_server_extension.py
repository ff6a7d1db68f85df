"""workbench.widgets.server: the installed Jupyter config turns TCP_NODELAY on for kernel
WebSockets (a console keystroke's echo is not held back by Nagle's algorithm)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# A real jupyter_server with the environment's config, a real kernel and a real WebSocket to it;
# prints the server's connection class and the TCP_NODELAY of the server side of that WebSocket.
_PROBE = textwrap.dedent("""
    import asyncio, json, socket, sys, tempfile
    from jupyter_server.serverapp import ServerApp
    from tornado.websocket import websocket_connect

    async def main():
        app = ServerApp()
        app.initialize(argv=["--allow-root", "--no-browser", "--ip=127.0.0.1", "--port=0",
                             f"--ServerApp.root_dir={tempfile.mkdtemp()}", *sys.argv[1:]])
        cls = app.web_app.settings["kernel_websocket_connection_class"]
        kernel_id = await app.kernel_manager.start_kernel()
        url = f"ws://127.0.0.1:{app.port}/api/kernels/{kernel_id}/channels?token={app.identity_provider.token}"
        client = await websocket_connect(url)
        for _ in range(100):  # the handler registers its session once the kernel answered
            if cls._open_sessions:
                break
            await asyncio.sleep(0.1)
        handlers = list(cls._open_sessions.values())
        flags = [h.ws_connection.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for h in handlers]
        print(json.dumps({"class": cls.__module__, "nodelay": flags}))
        client.close()
        await app.kernel_manager.shutdown_all()
        app.http_server.stop()

    asyncio.run(main())
""")


def _probe(*flags: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *flags], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_kernel_websockets_send_without_delay():
    result = _probe()
    assert result["class"] == "workbench.widgets.server"
    assert result["nodelay"] and all(result["nodelay"]), result


def test_without_the_extension_nagle_stays_on():  # what the extension changes
    result = _probe("--ServerApp.jpserver_extensions=workbench.widgets.server=False")
    assert result["class"] != "workbench.widgets.server"
    assert result["nodelay"] and not any(result["nodelay"]), result
