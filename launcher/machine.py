"""What this machine has to give jobs (read from the kernel)."""

import os


def machine_capacity():
    """(cpu cores, memory bytes) of this machine."""
    memory = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.cpu_count() or 1), memory
