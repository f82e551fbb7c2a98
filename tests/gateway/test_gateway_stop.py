"""Stopping ``tagtrail gateway`` (SIGINT or SIGTERM) spools every read its ports had read.

The command runs the gateway through ``tagtrail.runtime.run_until_interrupted``. A signal used
to raise KeyboardInterrupt inside the gateway's loop, which skipped its orderly end
(``Gateway.finish``): reads decoded and waiting for their batch were dropped, and a serial
port's bytes, once read, exist nowhere else.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from gw_helpers import PtyReader, active_frames, spool_only_config, wait_until

from reader_gateway.orchestrator.gateway import Gateway
from tagtrail.runtime import run_until_interrupted

_FRAMES = 400


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_spools_every_read_already_read(tmp_path: Path, signum: int) -> None:
    reader = PtyReader(tmp_path / "ttyA")
    # Reads wait up to a minute for their batch: the stop finds them pending.
    config = spool_only_config(tmp_path, reader.link, gateway_id="gw-stop", max_delay_s=60.0)
    gateway = Gateway(config)
    seen: list[int] = []

    def feed_then_signal() -> None:
        try:
            wait_until(lambda: gateway.readers["AT-00000007"].connected, 10, "the port to open")
            reader.write(b"".join(active_frames(_FRAMES)))
            wait_until(
                lambda: gateway.readers["AT-00000007"].frames == _FRAMES, 10, "every frame read"
            )
            seen.append(gateway.normalizer.pending_reads)
        finally:
            os.kill(os.getpid(), signum)  # also when the above failed: the loop must end

    feeder = threading.Thread(target=feed_then_signal, daemon=True)
    feeder.start()
    try:
        run_until_interrupted(gateway.start, gateway.run, gateway.close)
    finally:
        reader.close()
    feeder.join(5)
    assert seen == [_FRAMES]  # all pending, none spooled yet, when the signal came
    assert gateway.reads_accepted == _FRAMES
    assert signal.getsignal(signum) is not None  # the previous handler is back
