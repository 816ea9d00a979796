"""A fair comparison, and the facts that make a result comparable at all.

Two throughput numbers compare only when they measured the same thing: the same requests (prompt
tokens, output lengths, sampling), the same output tokens in total (ignore_eos makes it a
property of the workload, not of the model's whims), on the same machine. Versions differ
between the runs of an experiment on purpose, so they are printed with every result
(`machine()`) rather than required equal.
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ch11.solutions import speedup  # noqa: F401 (exercise 11.5: the answer key)


def machine() -> dict:
    """The hardware and software a result came from."""
    import torch
    import transformers

    info = dict(python=platform.python_version(), torch=torch.__version__, transformers=transformers.__version__,
                threads=torch.get_num_threads(), cores=os.cpu_count(), os=platform.system())
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        try:
            import triton
            info["triton"] = triton.__version__
        except ImportError:
            pass
    else:
        info["device"] = cpu_name()
    return info


def provenance(module: str, argv: list[str] | None, threads: bool = True) -> dict:
    """The command that made a result (as typed, with the one-thread setting a CPU run needs) and
    when, in UTC."""
    args = " ".join(sys.argv[1:] if argv is None else argv)
    prefix = "OMP_NUM_THREADS=1 " if threads else ""
    return dict(command=f"{prefix}python -m {module} {args}".strip(), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


VERSIONS = ("python", "torch", "transformers", "cuda", "triton")


def measurement(title: str, kind: str, made: dict, env: dict, values, **more) -> dict:
    """A result in the one format of measurements/README.md (course/measurements.py reads it):
    `made` is provenance()'s command and time, `env` is machine()'s; what the machine is goes to
    "machine", the software to "versions", the numbers to "values" (shaped by `kind`)."""
    versions = {k: env[k] for k in VERSIONS if env.get(k)}
    hardware = {k: v for k, v in env.items() if k not in VERSIONS and k != "device"}
    device = "gpu" if env.get("cuda") else "cpu"
    return dict(title=title, kind=kind, command=made["command"], date=made["date"][:10], time=made["date"],
                machine={device: env["device"], **hardware}, versions=versions, **more, values=values)


def write_result(path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    try:  # macOS
        return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                              timeout=5).stdout.strip() or platform.processor()
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()
