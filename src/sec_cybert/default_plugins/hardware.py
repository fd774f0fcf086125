"""Built-in hardware profiles and the built-in ``auto`` detector."""

from __future__ import annotations

from sec_cybert.core import hardware
from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl
def register_hardware_profiles(register):
    register("cpu", hardware.cpu_profile)
    register("cuda", hardware.cuda_profile)
    register("rtx3090", hardware.rtx3090_profile)
    register("a100", hardware.a100_profile)
    register("h100", hardware.h100_profile)


@hookimpl(trylast=True)
def detect_hardware_profile(candidates):
    return hardware.detect_profile_name(candidates)
