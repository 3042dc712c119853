"""GPU SM utilisation and VRAM through NVML (nvidia-ml-py); an empty tuple where there is no GPU.

Only the GPUs CUDA shows this process (``CUDA_VISIBLE_DEVICES``; see ``ytingest.gpus``, never run
on a real GPU): four workers on a four-GPU box each report their own device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ytingest.gpus import BusIds, Gpu, close_nvml, open_nvml, visible_gpus


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int  # NVML's (nvidia-smi's) index
    name: str
    sm: float  # 0..1, over NVML's last sample period
    vram_used: int
    vram_total: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GpuProbe:
    """Reads the GPUs CUDA shows this process. Without a driver, ``sample()`` returns () and never raises.

    ``nvml``, ``env`` and ``bus_ids``: pynvml, ``os.environ`` and the CUDA driver unless a test
    passes fakes."""

    def __init__(
        self, *, nvml: Any = None, env: Mapping[str, str] | None = None, bus_ids: BusIds | None = None
    ) -> None:
        self._nvml: Any = open_nvml(nvml)
        self._gpus: tuple[Gpu, ...] = ()
        if self._nvml is None:  # no driver, no library, no GPU: CPU metrics only
            return
        try:
            self._gpus = visible_gpus(self._nvml, env=env, bus_ids=bus_ids)
        except Exception:
            self._gpus = ()
        if not self._gpus:
            self.close()

    @property
    def available(self) -> bool:
        return bool(self._gpus)

    def sample(self) -> tuple[GpuSample, ...]:
        if self._nvml is None:
            return ()
        out = []
        for gpu in self._gpus:
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(gpu.handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(gpu.handle)
                name = self._nvml.nvmlDeviceGetName(gpu.handle)
            except Exception:  # a GPU that falls off the bus is reported as missing, not fatal
                continue
            name = name.decode() if isinstance(name, bytes) else str(name)
            out.append(GpuSample(gpu.index, name, util.gpu / 100.0, int(mem.used), int(mem.total)))
        return tuple(out)

    def close(self) -> None:
        if self._nvml is not None:
            close_nvml(self._nvml)
            self._nvml = None
