"""GPU SM utilisation and VRAM through NVML (nvidia-ml-py); an empty tuple where there is no GPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    name: str
    sm: float  # 0..1, over NVML's last sample period
    vram_used: int
    vram_total: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GpuProbe:
    """Reads every NVIDIA GPU. Without a driver, ``sample()`` returns () and never raises."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception:  # no driver, no library, no GPU: CPU metrics only
            self._handles = []

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def sample(self) -> tuple[GpuSample, ...]:
        if self._nvml is None:
            return ()
        out = []
        for i, handle in enumerate(self._handles):
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                name = self._nvml.nvmlDeviceGetName(handle)
            except Exception:  # a GPU that falls off the bus is reported as missing, not fatal
                continue
            name = name.decode() if isinstance(name, bytes) else str(name)
            out.append(GpuSample(i, name, util.gpu / 100.0, int(mem.used), int(mem.total)))
        return tuple(out)

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
