"""Hardware profiles: what a machine can do, and how stage settings resolve against it.

A stage setting left unset (``None``) takes the profile's value. A setting the machine cannot
honour is downgraded with one log line naming what changed and why (flash-attn missing,
TF32 off a CUDA device, bf16 on a GPU without it), so one config runs everywhere and the log
says what actually ran.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.errors import HardwareError

if TYPE_CHECKING:
    import pluggy

    from sec_cybert.core.components import HardwareProfile

log = structlog.get_logger(__name__)

AttnImplementation = Literal["flash_attention_2", "sdpa", "eager"]
ATTN_IMPLEMENTATIONS = ("flash_attention_2", "sdpa", "eager")


@attrs.frozen
class Profile:
    """A named set of hardware facts and the training defaults that suit them."""

    name: str
    device: Literal["cpu", "cuda"] = attrs.field(validator=v.in_(("cpu", "cuda")))
    bf16: bool = False
    tf32: bool = False
    torch_compile: bool = False
    attn_implementation: str = attrs.field(default="sdpa", validator=v.in_(ATTN_IMPLEMENTATIONS))
    optim: str = "adamw_torch"
    memory_gib: float | None = None
    #: Training throughput used by ``plan`` for duration estimates, with where it came from.
    tokens_per_second: float | None = None
    throughput_source: str | None = None
    #: Regular expressions matched against ``torch.cuda.get_device_name()`` by ``auto``.
    gpu_name_patterns: tuple[str, ...] = ()
    dataloader_num_workers: int = 0

    def matches_device(self, device_name: str) -> bool:
        return any(re.search(pattern, device_name, re.IGNORECASE) for pattern in self.gpu_name_patterns)

    def problems(self) -> list[str]:
        if self.device == "cuda" and not _cuda_available():
            return [
                f"hardware profile {self.name!r} needs a CUDA GPU and none is visible; use 'cpu' or 'auto'"
            ]
        return []


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


# The reference procedure's RTX 3090 run: ModernBERT-large, seq 8192, batch 4 x 8 accumulation,
# ~27 s per optimizer step => 4 * 8 * 8192 / 27 ~ 9,700 tokens/s.
RTX3090_TOKENS_PER_SECOND = 4 * 8 * 8192 / 27


def cpu_profile() -> Profile:
    return Profile(name="cpu", device="cpu", optim="adamw_torch")


def cuda_profile() -> Profile:
    """Any CUDA GPU without a profile of its own: safe defaults, SDPA attention."""
    return Profile(
        name="cuda", device="cuda", bf16=True, tf32=True, optim="adamw_torch_fused", dataloader_num_workers=2
    )


def rtx3090_profile() -> Profile:
    return Profile(
        name="rtx3090",
        device="cuda",
        bf16=True,
        tf32=True,
        torch_compile=True,
        attn_implementation="flash_attention_2",
        optim="adamw_torch_fused",
        memory_gib=24.0,
        tokens_per_second=RTX3090_TOKENS_PER_SECOND,
        throughput_source="reference procedure: ModernBERT-large, seq 8192, ~27 s/step at 4x8 sequences",
        gpu_name_patterns=(r"RTX 3090",),
        dataloader_num_workers=2,
    )


def a100_profile() -> Profile:
    return Profile(
        name="a100",
        device="cuda",
        bf16=True,
        tf32=True,
        torch_compile=True,
        attn_implementation="flash_attention_2",
        optim="adamw_torch_fused",
        memory_gib=80.0,
        gpu_name_patterns=(r"A100",),
        dataloader_num_workers=4,
    )


def h100_profile() -> Profile:
    """Hopper (H100, H200): the A100's settings; no measured throughput yet."""
    return attrs.evolve(a100_profile(), name="h100", gpu_name_patterns=(r"H100", r"H200"))


def detect_profile_name(candidates: Mapping[str, Any]) -> str:
    """The built-in ``auto`` rule: the first profile whose GPU name pattern matches, else cuda/cpu."""
    if not _cuda_available():
        return "cpu"
    import torch

    device_name = torch.cuda.get_device_name(0)
    for name, factory in sorted(candidates.items()):
        profile = factory()
        if getattr(profile, "matches_device", None) and profile.matches_device(device_name):
            return name
    return "cuda"


def resolve_profile(name: str, registry: Any, pm: pluggy.PluginManager, *, check: bool = True) -> HardwareProfile:
    """Build the profile called ``name``; ``auto`` asks the ``detect_hardware_profile`` hook."""
    if name == "auto":
        candidates = {n: registry.factory("hardware", n) for n in registry.names("hardware")}
        name = pm.hook.detect_hardware_profile(candidates=candidates) or "cpu"
        log.info("hardware detected", profile=name)
    profile = registry.factory("hardware", name)()
    problems = profile.problems() if check else []
    if problems:
        raise HardwareError("; ".join(problems))
    return profile


@attrs.frozen
class RuntimeSettings:
    """The settings a stage actually runs with, after the profile and the device had their say."""

    device: str
    bf16: bool
    tf32: bool
    torch_compile: bool
    attn_implementation: str
    optim: str
    dataloader_num_workers: int
    downgrades: tuple[str, ...] = ()


def resolve_runtime(
    profile: HardwareProfile,
    *,
    bf16: bool | None = None,
    tf32: bool | None = None,
    torch_compile: bool | None = None,
    attn_implementation: str | None = None,
    optim: str | None = None,
) -> RuntimeSettings:
    """Merge explicit stage settings over the profile's, then downgrade what cannot run here."""
    chosen = {
        "bf16": profile.bf16 if bf16 is None else bf16,
        "tf32": profile.tf32 if tf32 is None else tf32,
        "torch_compile": profile.torch_compile if torch_compile is None else torch_compile,
        "attn_implementation": attn_implementation or profile.attn_implementation,
        "optim": optim or profile.optim,
    }
    downgrades: list[str] = []
    on_cuda = profile.device == "cuda"
    if chosen["tf32"] and not on_cuda:
        chosen["tf32"] = False
        downgrades.append("tf32 -> off: TF32 exists only on CUDA (Ampere and newer)")
    if chosen["bf16"] and on_cuda:
        import torch

        if not torch.cuda.is_bf16_supported():
            chosen["bf16"] = False
            downgrades.append("bf16 -> off: this GPU does not support bfloat16")
    if chosen["attn_implementation"] == "flash_attention_2" and not (on_cuda and flash_attn_installed()):
        chosen["attn_implementation"] = "sdpa"
        why = "flash-attn is not installed (pip install 'sec-cybert[flash]')" if on_cuda else "it needs CUDA"
        downgrades.append(f"attn_implementation flash_attention_2 -> sdpa: {why}")
    if chosen["optim"].endswith("_fused") and not on_cuda:
        chosen["optim"] = chosen["optim"].removesuffix("_fused")
        downgrades.append("optim adamw_torch_fused -> adamw_torch: the fused kernel is for CUDA")
    for line in downgrades:
        log.warning("setting downgraded", profile=profile.name, change=line)
    return RuntimeSettings(
        device=profile.device,
        dataloader_num_workers=profile.dataloader_num_workers,
        downgrades=tuple(downgrades),
        **chosen,
    )
