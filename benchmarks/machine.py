"""What machine a benchmark ran on, for the figures it prints."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """The CPU model, the cores, the OS."""
    return f"{cpu_model()}, {os.cpu_count()} cores; {platform.system()} {platform.release()}"
