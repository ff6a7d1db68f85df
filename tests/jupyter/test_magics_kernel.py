"""`%ctr` in a real ipykernel driven by jupyter_client: live streams, results, the interrupt button."""

from __future__ import annotations

import os
import queue
import time

import pytest

import jupyter_client


class Kernel:
    """A real kernel; `run` executes a cell and returns its iopub messages with arrival times."""

    def __init__(self, env: dict[str, str]):
        self.km = jupyter_client.KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, extra_arguments=["--HistoryManager.enabled=False"])
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60, interrupt_after: float | None = None) -> tuple[dict, list]:
        msg_id = self.kc.execute(code)
        messages, start = [], time.monotonic()
        interrupted = False
        while True:
            if interrupt_after is not None and not interrupted and time.monotonic() - start > interrupt_after:
                self.km.interrupt_kernel()
                interrupted = True
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"cell did not finish: {code!r}")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append((time.monotonic() - start, msg))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=10)
        return reply["content"], messages

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(store, busybox_tar):
    env = {**os.environ, "WORKBENCH_ROOT": store["root"], "WORKBENCH_RUNROOT": store["runroot"]}
    k = Kernel(env)
    reply, _ = k.run(f"%load_ext workbench\n%ctr import {busybox_tar} bb")
    assert reply["status"] == "ok"
    yield k
    k.run("%ctr rm -a -f -t 0")
    k.close()


def _streams(messages: list) -> list[tuple[float, str, str]]:
    return [(t, m["content"]["name"], m["content"]["text"]) for t, m in messages if m["msg_type"] == "stream"]


def test_output_streams_live_with_stdout_and_stderr_apart(kernel):
    reply, messages = kernel.run("%ctr run --rm --network none bb sh -c "
                                 "'echo one; sleep 1; echo two >&2; sleep 1; echo three'")
    assert reply["status"] == "ok"
    streams = _streams(messages)
    assert [(name, text) for _, name, text in streams] == [("stdout", "one\n"), ("stderr", "two\n"),
                                                            ("stdout", "three\n")]
    assert streams[2][0] - streams[0][0] > 1.5, "output arrived at the end, not as it came"


def test_results_are_dataframes_and_exit_codes_are_kept(kernel):
    reply, _ = kernel.run("%ctr create --name idle --network none bb true\n"
                          "df = %ctr ps -a\n"
                          "import pandas as pd\n"
                          "assert isinstance(df, pd.DataFrame) and list(df['NAMES']) == ['idle']\n"
                          "%ctr run --rm --network none bb sh -c 'exit 5'\n"
                          "assert _ctr_exit_code == 5, _ctr_exit_code")
    assert reply["status"] == "ok", reply
    reply, messages = kernel.run("%ctr ps -a")
    results = [m["content"]["data"] for _, m in messages if m["msg_type"] == "execute_result"]
    assert "text/html" in results[0] and "idle" in results[0]["text/html"]


def test_interrupt_stops_the_process_and_returns_within_seconds(kernel):
    reply, messages = kernel.run("%ctr run --name sleeper --network none bb sleep 60", interrupt_after=2.0)
    assert reply["status"] == "ok"
    took = messages[-1][0]
    assert took < 6, f"the interrupted cell took {took:.1f}s"
    assert any("Process was killed" in text for _, _, text in _streams(messages))
    reply, messages = kernel.run("%ctr inspect --format '{{.State.Status}} {{.State.ExitCode}}' sleeper")
    assert [text for _, _, text in _streams(messages)] == ["exited 137\n"]
    reply, _ = kernel.run("%ctr run --rm --network none bb true\nassert _ctr_exit_code == 0")
    assert reply["status"] == "ok", "the kernel stays usable after an interrupt"
