"""The GPUs this process may use (``ytingest.gpus``), against a fake NVML and a fake CUDA driver.

No real GPU has run this: the fakes stand for pynvml and libcuda as their documentation describes
them (NVML numbers devices by PCI bus; CUDA in CUDA_DEVICE_ORDER after CUDA_VISIBLE_DEVICES)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from ytingest import gpus
from ytingest.cli.workers import prepare_worker
from ytingest.gpus import free_memory, visible_gpus
from ytingest.models import asr
from ytingest.models.asr import VRAM_PER_CHUNK, VRAM_RESERVED, WhisperTranscriber, fit_batch_size
from ytingest.monitor.gpu import GpuProbe, GpuSample

GIB = 2**30


@dataclass
class Device:
    uuid: str
    bus_id: str  # as NVML writes it
    free: int
    sm: int = 40
    total: int = 80 * GIB


class FakeNvml:
    """The pynvml calls ytingest makes, over devices listed in NVML's (PCI bus) order."""

    def __init__(self, *devices: Device, init_error: Exception | None = None) -> None:
        self.devices, self.init_error = list(devices), init_error
        self.inits = self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> Device:
        return self.devices[i]

    def nvmlDeviceGetIndex(self, handle: Device) -> int:
        return self.devices.index(handle)

    def nvmlDeviceGetUUID(self, handle: Device) -> str:
        return handle.uuid

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> Device:
        """NVML's _v2 lookup: "domain:bus:device.function", numbers in hex."""
        for d in self.devices:
            if _pci(d.bus_id) == _pci(bus_id):
                return d
        raise LookupError(f"NVML_ERROR_NOT_FOUND: {bus_id}")

    def nvmlDeviceGetMemoryInfo(self, handle: Device) -> SimpleNamespace:
        return SimpleNamespace(free=handle.free, used=handle.total - handle.free, total=handle.total)

    def nvmlDeviceGetUtilizationRates(self, handle: Device) -> SimpleNamespace:
        return SimpleNamespace(gpu=handle.sm)

    def nvmlDeviceGetName(self, handle: Device) -> bytes:
        return b"NVIDIA H100"


def _pci(bus_id: str) -> tuple[int, ...]:
    return tuple(int(x, 16) for x in re.split("[:.]", bus_id))


# NVML's order is the PCI bus's; the fastest card (CUDA's default ordinal 0) sits on the last bus
A = Device("GPU-aaaa1111-0000-0000-0000-000000000000", "00000000:1B:00.0", 10 * GIB)
B = Device("GPU-bbbb2222-0000-0000-0000-000000000000", "00000000:41:00.0", 20 * GIB)
C = Device("GPU-bbbb3333-0000-0000-0000-000000000000", "00000000:C1:00.0", 30 * GIB)


def no_libcuda() -> list[str] | None:
    return None


def never_asked() -> list[str] | None:
    raise AssertionError("the CUDA driver was asked for a MIG slice's bus id (its parent GPU's)")


def indices(env: dict[str, str], bus_ids: Any = no_libcuda) -> tuple[int, ...]:
    return tuple(g.index for g in visible_gpus(FakeNvml(A, B, C), env=env, bus_ids=bus_ids))


def test_unset_means_every_device() -> None:
    """CUDA_VISIBLE_DEVICES unset: every GPU, in NVML's order when libcuda cannot be asked."""
    assert indices({}) == (0, 1, 2)


def test_integers_are_nvml_indices_in_pci_bus_order() -> None:
    """Without libcuda, an integer is the NVML index (CUDA's own under CUDA_DEVICE_ORDER=PCI_BUS_ID)."""
    assert indices({"CUDA_VISIBLE_DEVICES": "2", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}) == (2,)
    assert indices({"CUDA_VISIBLE_DEVICES": "2, 0"}) == (2, 0)


def test_a_uuid_or_its_unique_prefix_names_its_device() -> None:
    """GPU-<uuid> and a prefix only one device has pick that device; a shared prefix picks none."""
    assert indices({"CUDA_VISIBLE_DEVICES": B.uuid}) == (1,)
    assert indices({"CUDA_VISIBLE_DEVICES": "GPU-bbbb3"}) == (2,)
    assert indices({"CUDA_VISIBLE_DEVICES": "gpu-AAAA"}) == (0,)
    assert indices({"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}) == ()


def test_the_cuda_drivers_bus_ids_win_when_its_order_is_not_nvmls() -> None:
    """FASTEST_FIRST: CUDA's 0 is the card on bus C1; the driver's bus ids find it in NVML."""
    env = {"CUDA_VISIBLE_DEVICES": "0,1"}  # CUDA ordinals, which NVML's indices would misread
    assert indices(env, bus_ids=lambda: ["0000:c1:00.0", "0000:41:00.0"]) == (2, 1)
    nvml = FakeNvml(A, B, C)
    assert free_memory(nvml, env=env, bus_ids=lambda: ["0000:c1:00.0", "0000:41:00.0"]) == C.free
    assert nvml.shutdowns == nvml.inits == 1


def test_a_bus_id_nvml_does_not_know_ends_the_list() -> None:
    """The first CUDA device not found in NVML: none from there on, never another device instead."""
    assert indices({}, bus_ids=lambda: ["0000:99:00.0", "0000:1b:00.0"]) == ()
    assert indices({}, bus_ids=lambda: []) == ()  # the driver shows no device


@pytest.mark.parametrize("value", ["", "-1", "NoDevFiles", "7", "cuda0", "MIG-5c5e-0000", "GPU-ffff"])
def test_no_device_or_an_unknown_one_means_none_never_device_0(value: str) -> None:
    """Empty, -1, NoDevFiles, an index past the last, garbage, a MIG slice or an unknown UUID: none."""
    assert (
        indices({"CUDA_VISIBLE_DEVICES": value}, bus_ids=never_asked if "MIG" in value else no_libcuda) == ()
    )
    nvml = FakeNvml(A, B, C)
    assert free_memory(nvml, env={"CUDA_VISIBLE_DEVICES": value}, bus_ids=no_libcuda) is None


def test_the_list_ends_at_the_first_entry_that_names_no_device() -> None:
    """As CUDA reads it: entries after an invalid one, or a repeated one, are not visible."""
    assert indices({"CUDA_VISIBLE_DEVICES": "1,9,0"}) == (1,)
    assert indices({"CUDA_VISIBLE_DEVICES": "1,1,0"}) == (1,)
    assert indices({"CUDA_VISIBLE_DEVICES": "2,MIG-5c5e-0000,0"}, bus_ids=never_asked) == (2,)


def test_free_vram_is_the_first_visible_devices() -> None:
    """The ASR device is the first visible one, not NVML's device 0."""
    assert free_memory(FakeNvml(A, B, C), env={"CUDA_VISIBLE_DEVICES": "1,0"}, bus_ids=no_libcuda) == B.free
    assert free_memory(FakeNvml(A, B, C), env={}, bus_ids=no_libcuda) == A.free


def test_asr_free_vram_reads_the_visible_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """models.asr.free_vram goes through pynvml and CUDA_VISIBLE_DEVICES (here: fakes of both)."""
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(A, B, C))
    monkeypatch.setattr(gpus, "cuda_bus_ids", no_libcuda)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", C.uuid)
    assert asr.free_vram() == C.free


def test_without_nvml_there_is_no_free_vram_and_no_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynvml missing or its nvmlInit failing: None and (), no error, no shutdown."""
    broken = FakeNvml(A, init_error=RuntimeError("NVML_ERROR_DRIVER_NOT_LOADED"))
    assert free_memory(broken, env={}, bus_ids=no_libcuda) is None
    probe = GpuProbe(nvml=broken, env={}, bus_ids=no_libcuda)
    assert not probe.available and probe.sample() == ()
    probe.close()
    assert broken.shutdowns == 0
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert free_memory(env={}, bus_ids=no_libcuda) is None
    assert GpuProbe(env={}, bus_ids=no_libcuda).sample() == ()


def test_the_probe_samples_only_the_visible_devices() -> None:
    """A worker given the second GPU reports that one, under NVML's (nvidia-smi's) index."""
    probe = GpuProbe(nvml=FakeNvml(A, B, C), env={"CUDA_VISIBLE_DEVICES": "1"}, bus_ids=no_libcuda)
    sample = GpuSample(1, "NVIDIA H100", 0.4, B.total - B.free, B.total)
    assert probe.available and probe.sample() == (sample,)
    probe.close()
    assert probe.sample() == ()


def test_a_probe_that_sees_no_visible_device_lets_nvml_go() -> None:
    """Nothing visible: not available, () and NVML shut down at once."""
    nvml = FakeNvml(A, B)
    probe = GpuProbe(nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "-1"}, bus_ids=no_libcuda)
    assert not probe.available and probe.sample() == () and nvml.shutdowns == 1


def test_worker_gpu_n_is_nvidia_smis_nth_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """``worker --gpu N`` sets CUDA_VISIBLE_DEVICES=N and orders CUDA's devices by PCI bus."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    prepare_worker(argparse.Namespace(worker_name="w", gpu="2"))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_the_asr_batch_is_sized_once_not_per_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four ASR workers on a card share its weights: the batch is what its free VRAM holds, not a quarter."""
    import faster_whisper

    real = faster_whisper.WhisperModel

    def on_cpu(path: str, **kw: Any) -> Any:  # the device says cuda; the real tiny.en runs here on CPU
        assert kw["device"] == "cuda" and kw["num_workers"] == 4
        return real(path, device="cpu", compute_type="int8", num_workers=kw["num_workers"])

    monkeypatch.setattr(faster_whisper, "WhisperModel", on_cpu)
    monkeypatch.setattr(asr, "free_vram", lambda: VRAM_RESERVED + 12 * VRAM_PER_CHUNK)
    t = WhisperTranscriber("bundled", device="cuda", workers=4, batching="cross", batch_size=None)
    assert t.batch_size == fit_batch_size(VRAM_RESERVED + 12 * VRAM_PER_CHUNK) == 12
    monkeypatch.setattr(asr, "free_vram", lambda: None)  # NVML cannot tell: the default 8
    assert WhisperTranscriber("bundled", device="cuda", workers=4, batch_size=None).batch_size == 8


class FakeLibcuda:
    """libcuda's four calls as ctypes makes them: out-parameters written through byref and a buffer."""

    def __init__(self, *bus_ids: str, init: int = 0) -> None:
        self.bus_ids, self.init = bus_ids, init

    def cuInit(self, flags: int) -> int:
        return self.init

    def cuDeviceGetCount(self, count: Any) -> int:
        count._obj.value = len(self.bus_ids)
        return 0

    def cuDeviceGet(self, device: Any, ordinal: int) -> int:
        device._obj.value = 100 + ordinal  # a CUdevice is an opaque int, not the ordinal
        return 0

    def cuDeviceGetPCIBusId(self, buf: Any, size: int, device: Any) -> int:
        buf.value = self.bus_ids[device.value - 100].encode()[: size - 1]
        return 0


def test_the_drivers_answers_become_bus_ids_in_cudas_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda_bus_ids: a bus id per CUDA ordinal; [] for CUDA_ERROR_NO_DEVICE; None: a stub or no libcuda."""
    libs: dict[str, Any] = {}

    def cdll(name: str) -> Any:
        if name not in libs:
            raise OSError(f"{name}: cannot open shared object file")
        return libs[name]

    monkeypatch.setattr(gpus.ctypes, "CDLL", cdll)
    assert gpus.cuda_bus_ids() is None
    libs["libcuda.so.1"] = FakeLibcuda("0000:C1:00.0", "0000:41:00.0")
    assert gpus.cuda_bus_ids() == ["0000:C1:00.0", "0000:41:00.0"]
    libs["libcuda.so.1"] = FakeLibcuda(init=100)
    assert gpus.cuda_bus_ids() == []
    libs["libcuda.so.1"] = FakeLibcuda("0000:C1:00.0", init=34)  # CUDA_ERROR_STUB_LIBRARY
    assert gpus.cuda_bus_ids() is None
