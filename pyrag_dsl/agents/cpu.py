"""What this CPU and OS let llama.cpp use: the x86 feature flags that matter, whether the OS has enabled
AMX tile state, and whether an AMX instruction actually runs here.

Some VMs advertise AMX in CPUID (and /proc/cpuinfo) without giving the guest the state: a llama.cpp built
with native flags then dies with SIGSEGV at its first matrix product. The risky checks (XGETBV, LDTILECFG)
run in a child process (`python -m pyrag_dsl.agents.cpu`), so a fault kills the probe, never the caller.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ctypes

    _CType = type[ctypes._SimpleCData[Any]]  # c_int, c_uint64, c_void_p, ...

# Flags that decide which llama.cpp build runs here (the order is the order of the report).
FEATURES = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
XCR0_AMX_BITS = (1 << 17) | (1 << 18)  # XTILECFG, XTILEDATA
# The flags that build llama.cpp natively but without AMX kernels (GCC lets -mno-* win over -march=native).
NO_AMX_CFLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
REBUILD_LLAMA = (
    f'CFLAGS="{NO_AMX_CFLAGS}" CXXFLAGS="{NO_AMX_CFLAGS}" pip install --force-reinstall --no-cache-dir '
    '--no-deps "llama-cpp-python[server]"'
)


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The `flags` of the first CPU in /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_model(cpuinfo: str | None = None) -> str:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return "unknown"
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown"


@dataclass(frozen=True)
class AmxProbe:
    """What the child probe saw: XCR0 (None where it could not be read), whether Linux granted the
    process AMX tile data, and whether LDTILECFG ran; `signal` names the signal that killed the probe."""

    xcr0: int | None = None
    permission: bool | None = None
    tile_ok: bool | None = None
    signal: str | None = None

    @property
    def os_enabled(self) -> bool | None:
        return None if self.xcr0 is None else (self.xcr0 & XCR0_AMX_BITS) == XCR0_AMX_BITS

    @property
    def usable(self) -> bool:
        return bool(self.os_enabled and self.permission and self.tile_ok)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "os_enabled": self.os_enabled, "usable": self.usable}


def probe_amx(timeout_s: float = 20.0) -> AmxProbe:
    """Run the AMX probe in a child process (only meaningful where the CPU advertises `amx_tile`)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pyrag_dsl.agents.cpu"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return AmxProbe(signal=f"probe failed: {type(e).__name__}")
    seen: dict[str, Any] = {}
    for line in proc.stdout.splitlines():  # one JSON object per step, so a fault still leaves the earlier steps
        try:
            seen.update(json.loads(line))
        except ValueError:
            continue
    sig = signal_name(proc.returncode) if proc.returncode < 0 else None
    return AmxProbe(
        xcr0=seen.get("xcr0"),
        permission=seen.get("permission"),
        tile_ok=seen.get("tile_ok", False if sig else None),
        signal=sig,
    )


def signal_name(returncode: int) -> str:
    """'SIGSEGV' for a child that ended with returncode -11."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


# x86-64 machine code for the child probe (System V ABI).
_XGETBV0 = bytes.fromhex("31c90f01d048c1e2204809d0c3")  # xor ecx,ecx; xgetbv; rax |= rdx << 32; ret
_LDTILECFG = bytes.fromhex("c4e2784907c4e27849c031c0c3")  # ldtilecfg [rdi]; tilerelease; xor eax,eax; ret
_ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA, _SYS_ARCH_PRCTL = 0x1023, 18, 158


def _machine_code(code: bytes, restype: _CType | None, *argtypes: _CType) -> Callable[..., Any]:
    import ctypes
    import mmap

    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    fn = ctypes.CFUNCTYPE(restype, *argtypes)(address)
    # keep the page alive as long as the function (ctypes functions take attributes; typeshed does not say so)
    fn._buf = buf  # type: ignore[attr-defined]
    return fn


def _child() -> None:
    """The probe itself: prints one JSON line per step; a fault ends it by signal."""
    import ctypes

    def say(**kw: object) -> None:
        print(json.dumps(kw), flush=True)

    flags = cpu_flags()
    if "xsave" not in flags or "avx" not in flags:  # XGETBV needs the OS to have turned XSAVE on
        return
    xcr0 = _machine_code(_XGETBV0, ctypes.c_uint64)()
    say(xcr0=int(xcr0))
    if (xcr0 & XCR0_AMX_BITS) != XCR0_AMX_BITS or "amx_tile" not in flags:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    granted = libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0
    say(permission=granted)
    if not granted:
        return
    config = (ctypes.c_uint8 * 64)()
    config[0] = 1  # palette 1, every tile unconfigured: the smallest valid tile configuration
    _machine_code(_LDTILECFG, ctypes.c_int, ctypes.c_void_p)(ctypes.addressof(config))
    say(tile_ok=True)


if __name__ == "__main__":
    _child()
