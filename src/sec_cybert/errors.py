"""The exceptions a user can cause, each carrying a message that says what to do.

Everything the library raises on bad input derives from :class:`SecCybertError`; the CLI turns
any of them into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class SecCybertError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(SecCybertError):
    """A configuration is invalid. ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: Sequence[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}{self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{where}{len(self.problems)} problems:\n{lines}"
        super().__init__(message)


class PluginError(SecCybertError):
    """A plugin could not be loaded, or registered something invalid."""


class UnknownComponentError(PluginError, LookupError):
    """A component name is not registered. The message lists the names that are."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "(none registered)"
        super().__init__(
            f"unknown {kind} {name!r}; known {kind}s: {listed}. "
            f"Check the spelling, or install the plugin that provides it (`sec-cybert plugins` lists them)."
        )


class DataError(SecCybertError):
    """Input data is missing, empty or malformed."""


class HardwareError(SecCybertError):
    """The requested hardware profile cannot run here, or the run will not fit."""


class OptionalDependencyError(SecCybertError, ImportError):
    """An optional extra is needed for this feature."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}: pip install 'sec-cybert[{extra}]'"
        )


class NumericalError(SecCybertError):
    """Training produced non-finite numbers (or a gradient norm alarm): the stage stopped."""


class Preempted(SecCybertError):
    """SIGTERM arrived: the stage saved a checkpoint and stopped; the same command resumes."""
