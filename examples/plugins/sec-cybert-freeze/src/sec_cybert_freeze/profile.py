"""The ``ci-runner`` hardware profile: a plugin's own class with exactly the attributes of the
``HardwareProfile`` Protocol (``sec_cybert.core.hardware.Profile`` is not needed)."""

from __future__ import annotations

import attrs


@attrs.frozen
class CIRunnerProfile:
    """A small CI machine: CPU only, a couple of cores, a few GiB of memory.

    No worker processes for the data loader (they would compete with training for two cores), no
    compilation (it costs more than a few steps save), SDPA attention and plain AdamW. Runs on
    any machine, so ``problems()`` is always empty.
    """

    name: str = "ci-runner"
    device: str = "cpu"
    bf16: bool = False
    tf32: bool = False
    torch_compile: bool = False
    attn_implementation: str = "sdpa"
    optim: str = "adamw_torch"
    dataloader_num_workers: int = 0
    #: Per device (here the machine's RAM): ``plan`` warns when weights, gradients and AdamW
    #: states alone pass 80 % of it.
    memory_gib: float | None = 7.0
    #: What ``plan`` divides a stage's tokens by, and where the figure comes from (printed beside it).
    tokens_per_second: float | None = 50_000.0
    throughput_source: str | None = (
        "measured on 2 CPU cores: the demo's tiny-modernbert (hidden 64, 2 layers), 16 x 256 tokens per step"
    )

    def problems(self) -> list[str]:
        return []
