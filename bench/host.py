"""The machine a bench ran on, so that CPU-second figures from different hosts can be compared.

CPU seconds are fair between runs on one machine but not between machines: the same detection work took
3.6 - 3.8 times the CPU seconds on one 2-core Intel Xeon as on one 2-core AMD EPYC. Each figure is printed
with the host's CPU model and a yardstick: the shipped detector's one-thread call at the input a 16:9
frame goes through, which is most of what the detection function's CPU line buys.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name as the kernel reports it ("unknown CPU" where it does not)."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return "unknown CPU"


def detector_ms(calls: int = 30) -> float:
    """Median milliseconds of one interpreter call of the shipped model at 448x256, one thread (the
    detection function's setting), after a warm-up."""
    import numpy as np

    from detection.detectors.base import MODELS_DIR
    from detection.detectors.nanodet import _Net

    net = _Net(MODELS_DIR / "nanodet-m-448x352.tflite", threads=1, height=256)
    width, height = net.input_size
    net.interpreter.set_tensor(net.input_index, np.zeros((1, height, width, 3), np.float32))
    times = []
    for i in range(calls + 3):
        t0 = time.perf_counter()
        net.interpreter.invoke()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def describe(cpu: str, yardstick_ms: float) -> str:
    return (f"{cpu}, {os.cpu_count()} cores; the detector's one-thread call at 448x256: "
            f"{yardstick_ms:.1f} ms")
