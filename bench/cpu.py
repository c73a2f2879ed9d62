"""`make bench-cpu`: pretext images/s per kernel set x precision on this CPU -> bench/CPU_RESULTS.md.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it loads, so each kernel setting runs in its own
process (`bench/precision.py --json`: float32 and mixed_bfloat16 alternating inside it); the processes
alternate too (off first in odd rounds, on first in even ones), so load from other jobs is spread
over both. "unset" is TensorFlow's own choice for this CPU, which sslrun replaces with 1 on x86.

    python bench/cpu.py [--rounds 3] [--seconds 3] [--only rotation:small_cnn,...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from precision import fmt, machine  # noqa: E402

KERNELS = {"0": "oneDNN off", "1": "oneDNN on"}


def one_process(onednn: str, args) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [
            sys.executable,
            str(ROOT / "bench" / "precision.py"),
            "--rounds",
            "1",
            "--seconds",
            str(args.seconds),
            "--json",
            out.name,
            "--only",
            args.only,
        ]
        subprocess.run(cmd, env=env, check=True, cwd=ROOT)
        return json.loads(Path(out.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only", default="rotation:small_cnn,simclr:small_cnn,rotation:resnet20")
    parser.add_argument("--out", default=str(ROOT / "bench" / "CPU_RESULTS.md"))
    args = parser.parse_args()
    load, start = os.getloadavg()[0], time.perf_counter()
    speeds: dict[tuple, list[float]] = {}
    software = ""
    for r in range(args.rounds):
        for onednn in list(KERNELS) if r % 2 == 0 else list(KERNELS)[::-1]:
            result = one_process(onednn, args)
            software = result["software"]
            for row in result["rows"]:
                for precision, values in row["speeds"].items():
                    speeds.setdefault((row["task"], row["encoder"], onednn, precision), []).extend(values)
    write(speeds, software, args, time.perf_counter() - start, (load, os.getloadavg()[0]))


def write(speeds: dict, software: str, args, seconds: float, load: tuple[float, float]) -> None:
    command = "python bench/cpu.py " + " ".join(sys.argv[1:]) if len(sys.argv) > 1 else "make bench-cpu"
    lines = [
        "# Pretext images/s per kernel set and precision on this CPU (`make bench-cpu`)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now():%Y-%m-%d %H:%M}; {seconds / 60:.1f} min; load average at start/end "
        f"{load[0]:.1f}/{load[1]:.1f}  ",
        f"Software: {software}  ",
        "Batch 256, Adam, the trainer's defaults; images/s of training steps after warm-up (median of the "
        f"{args.rounds} alternating rounds, each round in brackets), as bench/precision.py measures them.",
        "",
        "| task | encoder | "
        + " | ".join(f"{k} {p}" for k in KERNELS.values() for p in ("fp32", "bf16"))
        + " | on/off fp32 | on/off bf16 |",
        "| --- | --- |" + " ---: |" * 6,
    ]
    for task, encoder in sorted({key[:2] for key in speeds}):
        cells, med = [], {}
        for onednn in KERNELS:
            for precision in ("float32", "mixed_bfloat16"):
                values = speeds[(task, encoder, onednn, precision)]
                med[(onednn, precision)] = statistics.median(values)
                cells.append(f"{med[(onednn, precision)]:,.0f} ({fmt(values)})")
        ratios = [f"{med[('1', p)] / med[('0', p)]:.2f}" for p in ("float32", "mixed_bfloat16")]
        lines.append(f"| {task} | {encoder} | " + " | ".join(cells + ratios) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
