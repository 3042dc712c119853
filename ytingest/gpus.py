"""The GPUs this process may use, the ones ``CUDA_VISIBLE_DEVICES`` names, as NVML handles.

NEVER RUN ON A REAL GPU: written and unit-tested against a fake NVML and a fake CUDA driver only
(``tests/unit/test_nvml_device.py``); no GPU was lent to check it.

CUDA numbers the devices it shows in ``CUDA_DEVICE_ORDER`` (FASTEST_FIRST by default); NVML numbers
every device by PCI bus, whatever the environment says. The bridge that holds in any order is the PCI
bus id: the CUDA driver (libcuda through ctypes) gives each visible device's, and NVML finds the handle
by it. Without libcuda, the variable is read as CUDA reads it: ``GPU-`` UUIDs (or a unique prefix of
one) by UUID, integers as NVML indices (CUDA's numbers when ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, which
``worker --gpu`` sets). Unset: every device; empty, ``-1`` or ``NoDevFiles``: none; the list ends at
the first entry that names no device, as in CUDA. A ``MIG-`` slice is not resolved (its memory is not
its parent GPU's): none from there on, never device 0 by accident.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ytingest.logs import get_logger

log = get_logger()

BusIds = Callable[[], list[str] | None]  # PCI bus ids of the CUDA-visible devices; None: cannot tell
_CUDA_LIBS = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")
_CUDA_ERROR_NO_DEVICE = 100


@dataclass(frozen=True, slots=True)
class Gpu:
    """One visible GPU: its NVML index (nvidia-smi's) and NVML handle."""

    index: int
    handle: Any


def cuda_bus_ids() -> list[str] | None:
    """PCI bus ids (``0000:3b:00.0``) of the devices CUDA shows this process, in CUDA's order.

    The driver applies ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` itself. None where libcuda
    cannot be loaded or started; [] where it shows no device."""
    for name in _CUDA_LIBS:
        try:
            cuda = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return None
    try:
        status = cuda.cuInit(0)
        if status == _CUDA_ERROR_NO_DEVICE:
            return []
        count = ctypes.c_int()
        if status != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return None
        ids = []
        for ordinal in range(count.value):
            device, buf = ctypes.c_int(), ctypes.create_string_buffer(32)
            if cuda.cuDeviceGet(ctypes.byref(device), ordinal) != 0:
                return None
            if cuda.cuDeviceGetPCIBusId(buf, len(buf), device) != 0:
                return None
            ids.append(buf.value.decode())
        return ids
    except (AttributeError, OSError):  # a libcuda without these symbols
        return None


def open_nvml(nvml: Any = None) -> Any:
    """``nvml`` (default pynvml) after ``nvmlInit``; None without the library, a driver or a GPU."""
    try:
        if nvml is None:
            import pynvml

            nvml = pynvml
        nvml.nvmlInit()
    except Exception:
        return None
    return nvml


def visible_gpus(
    nvml: Any, *, env: Mapping[str, str] | None = None, bus_ids: BusIds | None = None
) -> tuple[Gpu, ...]:
    """The GPUs CUDA shows this process, in CUDA's order (the first is the ASR device).

    ``nvml``: an initialised pynvml (or a fake); ``env``: default ``os.environ``; ``bus_ids``:
    default ``cuda_bus_ids``."""
    spec = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    entries = None if spec is None else [e.strip() for e in spec.split(",")]
    if not any(e.upper().startswith("MIG-") for e in entries or ()):  # MIG: the bus id is the parent's
        ids = (bus_ids or cuda_bus_ids)()
        if ids is not None:
            return _take(ids, lambda bus_id: _by_bus_id(nvml, bus_id))
    count = int(nvml.nvmlDeviceGetCount())
    if entries is None:
        return tuple(Gpu(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count))
    return _take(entries, lambda entry: _by_entry(nvml, entry, count))


def _take(names: list[str], find: Callable[[str], Gpu | None]) -> tuple[Gpu, ...]:
    """The devices found, up to the first name that finds none (or a device already taken)."""
    out: list[Gpu] = []
    for name in names:
        gpu = find(name)
        if gpu is None or any(g.index == gpu.index for g in out):
            if name not in ("", "-1", "NoDevFiles"):
                log.warning("gpu_not_resolved", entry=name, resolved=[g.index for g in out])
            break
        out.append(gpu)
    return tuple(out)


def _by_bus_id(nvml: Any, bus_id: str) -> Gpu | None:
    try:  # NVML's _v2 lookup reads "domain:bus:device.function" in hex, as CUDA writes it
        handle = nvml.nvmlDeviceGetHandleByPciBusId(bus_id)
        return Gpu(int(nvml.nvmlDeviceGetIndex(handle)), handle)
    except Exception:
        return None


def _by_entry(nvml: Any, entry: str, count: int) -> Gpu | None:
    """One CUDA_VISIBLE_DEVICES entry: an integer (NVML index) or a GPU UUID or unique prefix."""
    if entry.isdigit():
        i = int(entry)
        return Gpu(i, nvml.nvmlDeviceGetHandleByIndex(i)) if i < count else None
    if not entry.upper().startswith("GPU-"):
        return None  # MIG-..., -1, NoDevFiles, empty or garbage
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    uuids = [_text(nvml.nvmlDeviceGetUUID(h)).upper() for h in handles]
    found = [
        Gpu(i, h) for i, (h, u) in enumerate(zip(handles, uuids, strict=True)) if u.startswith(entry.upper())
    ]
    return found[0] if len(found) == 1 else None


def free_memory(
    nvml: Any = None, *, env: Mapping[str, str] | None = None, bus_ids: BusIds | None = None
) -> int | None:
    """Free memory in bytes of the first visible GPU (the ASR device); None without one."""
    lib = open_nvml(nvml)
    if lib is None:
        return None
    try:
        gpus = visible_gpus(lib, env=env, bus_ids=bus_ids)
        return int(lib.nvmlDeviceGetMemoryInfo(gpus[0].handle).free) if gpus else None
    except Exception:
        return None
    finally:
        close_nvml(lib)


def close_nvml(nvml: Any) -> None:
    """``nvmlShutdown``, never raising."""
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
