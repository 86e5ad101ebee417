"""What the CPU can do, read from /proc/cpuinfo (Linux; elsewhere nothing is known)."""

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # the units that run bfloat16 natively: x86, then ARM


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The set of CPU feature flags, or None when `cpuinfo` cannot be read (not Linux, or no flags line)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):  # x86 / ARM
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def has_native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """True / False when the flags say whether the CPU has bfloat16 units (any of BF16_FLAGS); None when unknown."""
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None
    return bool(flags.intersection(BF16_FLAGS))
