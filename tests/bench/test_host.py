"""The host line the benches print beside CPU-second figures."""

from __future__ import annotations

from pathlib import Path

from bench.host import cpu_model, describe, detector_ms


def test_cpu_model_reads_the_kernels_model_name(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n")
    assert cpu_model(x86) == "AMD EPYC 7B13"
    arm = tmp_path / "arm"  # Raspberry Pi style: no model name, a Model line at the end
    arm.write_text("processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert cpu_model(arm) == "Raspberry Pi 4 Model B Rev 1.4"
    assert cpu_model(tmp_path / "missing") == "unknown CPU"


def test_the_yardstick_times_the_shipped_detector() -> None:
    ms = detector_ms(calls=3)
    assert 0.5 < ms < 5000
    assert describe("AMD EPYC 7B13", ms).startswith("AMD EPYC 7B13, ")
    assert describe("AMD EPYC 7B13", ms).endswith(f"the detector's one-thread call at 448x256: {ms:.1f} ms")
