"""Measure again each running time the README states, and write them to benchmarks/RESULTS.md.

    python benchmarks/readme_figures.py                        # the demo and the --fast example (minutes)
    python benchmarks/readme_figures.py --tests --fast-lane    # and the test commands (~15 minutes)
    python benchmarks/readme_figures.py --dry-run              # what it would run; runs nothing

The README's figures (its "about 45 s", "about 15 s", "about 6 minutes" ...) hold on a quiet
machine only: on a 2-core machine with other jobs running the demo took 3 to 10 times as long.
So each figure is measured with the machine it ran on: cores, CPU model, memory, and the load
average before and after each command, which says whether the machine was quiet. Run it on a
quiet machine and copy what it measured into the README.

The figures, each timed as the README runs it (a fresh output directory each time):

- ``demo``: ``sec-cybert demo --out DIR``, end to end;
- ``yaml-fast``: ``python examples/pipeline_from_yaml.py --fast --out DIR``;
- ``--tests``: the README's test command, ``python3 -m tox``, with the environment recreated
  (``-r``, as on a clean clone): tox's install and the tests apart, and, from the run's JUnit
  report, the share of the docs' code blocks and the examples (tests/test_docs_run.py and
  tests/test_examples.py);
- ``--fast-lane``: ``python3 -m tox -- -m "not slow"`` (after ``--tests``, in its environment).

The table goes between two markers in benchmarks/RESULTS.md (replacing the last one written, or
appended at the end the first time); ``--results`` writes elsewhere. A command that fails is
reported with its exit status and the tail of its output, and the script exits non-zero.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- readme-figures:start (benchmarks/readme_figures.py writes this section: run it, do not edit) -->"
END = "<!-- readme-figures:end -->"
#: What tox.ini's test env sets: the demo and the examples run offline, as the tests do.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}
#: tox's summary line of an env: "py: OK (364.12=setup[90.10]+cmd[274.02] seconds)".
TOX_SUMMARY = re.compile(r"^\s*(?P<env>[\w.-]+): (?P<status>OK|FAIL)\w* \((?P<total>[\d.]+)=setup\[(?P<setup>[\d.]+)\]\+cmd\[(?P<cmd>[\d.,]+)\] seconds\)", re.MULTILINE)
DOCS_AND_EXAMPLES = ("tests.test_docs_run", "tests.test_examples")


@dataclass(frozen=True)
class Figure:
    """One running time the README states: where it says it, and the command that measures it."""

    name: str
    what: str
    #: Find the README's claims, by what each is about ("" for the figure itself); the first group
    #: of each pattern is the claim as the README words it.
    claims: dict[str, str]
    #: The command, given a fresh directory for its output and the tox command.
    command: Callable[[Path, list[str]], list[str]]
    #: Parts of one run's time, from its output (tox's setup/cmd split, the JUnit report).
    parts: Callable[[str, Path], dict[str, float]] = lambda output, workdir: {}


@dataclass
class Measurement:
    figure: Figure
    seconds: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    load_before: float = 0.0
    load_after: float = 0.0
    failure: str | None = None


def tox_parts(output: str, workdir: Path) -> dict[str, float]:
    """tox's own split of its time (install, tests) and the docs' and examples' share of the tests."""
    found = TOX_SUMMARY.search(output)
    parts = {}
    if found:
        parts["install"] = float(found["setup"])
        parts["tests"] = sum(float(c) for c in found["cmd"].split(","))
    report = workdir / "junit.xml"
    if report.is_file():
        cases = ET.parse(report).getroot().iter("testcase")
        parts["docs and examples"] = sum(
            float(case.get("time", 0)) for case in cases if case.get("classname", "").startswith(DOCS_AND_EXAMPLES)
        )
    return parts


def sec_cybert_command() -> str:
    """The console script beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "sec-cybert"
    return str(beside) if beside.is_file() else (shutil.which("sec-cybert") or "sec-cybert")


FIGURES = {
    figure.name: figure
    for figure in (
        Figure(
            "demo",
            "the demo, end to end",
            {"": r"(about [\d.]+ (?:s|seconds|minutes?)) on 2 CPU cores once installed"},
            lambda out, tox: [sec_cybert_command(), "demo", "--out", str(out / "demo")],
        ),
        Figure(
            "yaml-fast",
            "examples/pipeline_from_yaml.py --fast",
            {"": r"pipeline_from_yaml\.py --fast[^`]*` takes (about [\d.]+ (?:s|seconds|minutes?))"},
            lambda out, tox: [sys.executable, "examples/pipeline_from_yaml.py", "--fast", "--out", str(out / "yaml-fast")],
        ),
        Figure(
            "tests",
            "the test command (tox, environment recreated)",
            {
                "": r"(about [\d.]+ minutes of tests on 2 cores, plus [\d.]+ minutes of tox's install)",
                # Said beside the fast lane, which skips them.
                "docs and examples": r"\((?:these two )?(about [\d.]+ minutes) together\)",
            },
            lambda out, tox: [*tox, "-r", "--", "-q", f"--junitxml={out / 'junit.xml'}"],
            tox_parts,
        ),
        Figure(
            "fast-lane",
            'the fast lane (-m "not slow")',
            {"": r"\((about [\d.]+ minutes)\): `python3 -m tox -- -m \"not slow\"`"},
            lambda out, tox: [*tox, "--", "-m", "not slow", f"--junitxml={out / 'junit.xml'}"],
            tox_parts,
        ),
    )
}


def readme_claims(figure: Figure, readme: str) -> str:
    said = []
    for about, pattern in figure.claims.items():
        match = re.search(pattern, readme)
        said.append(" ".join(filter(None, [about, match[1] if match else "(not in the README)"])))
    return "; ".join(said)


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    except (OSError, TypeError):
        return None
    return kib / 2**20


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit} (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else commit


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = memory_gib()
    return (
        f"{os.cpu_count()} cores ({usable} usable), {cpu_model()}"
        + (f", {memory:.1f} GiB memory" if memory else "")
        + f"; {platform.system()} {platform.release()}, Python {platform.python_version()}, torch {version('torch')}"
    )


def seconds_text(values: Sequence[float]) -> str:
    def one(s: float) -> str:
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min ({s:.0f} s)"

    if len(values) == 1:
        return one(values[0])
    return f"{one(statistics.median(values))} median of {len(values)}, {min(values):.0f}-{max(values):.0f} s"


def measure(figure: Figure, tox: list[str], repeat: int, env: dict[str, str], log: Callable[[str], None]) -> Measurement:
    result = Measurement(figure, load_before=load_average())
    for attempt in range(repeat):
        with tempfile.TemporaryDirectory(prefix=f"readme-figures-{figure.name}-") as tmp:
            workdir = Path(tmp)
            command = figure.command(workdir, tox)
            log(f"{figure.name} ({attempt + 1}/{repeat}): {shlex.join(command)}")
            started = time.perf_counter()
            completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            output = completed.stdout + completed.stderr
            if completed.returncode != 0:
                result.failure = f"exit {completed.returncode}"
                log(f"{figure.name} failed (exit {completed.returncode}) after {elapsed:.0f} s:\n{output[-3000:]}")
                break
            result.seconds.append(elapsed)
            for part, value in figure.parts(output, workdir).items():
                result.parts.setdefault(part, []).append(value)
            log(f"{figure.name}: {elapsed:.1f} s")
    result.load_after = load_average()
    return result


def quietness(results: Sequence[Measurement], start_load: float) -> str:
    """Whether the machine was quiet: the figures of a busy one are upper bounds."""
    if not any(r.seconds or r.failure for r in results):
        return "A dry run: nothing was measured."
    cores = os.cpu_count() or 1
    busiest = max([start_load] + [r.load_before for r in results])
    if busiest > 0.5 * cores:
        return (
            f"The 1-minute load average reached {busiest:.2f} on {cores} cores before a command started: "
            "the machine was busy, so these times are upper bounds."
        )
    return f"The 1-minute load average stayed at or below {busiest:.2f} on {cores} cores before each command: a quiet machine."


def section(results: Sequence[Measurement], readme: str, *, when: str, how: str, where: str, start_load: float) -> str:
    rows = []
    for r in results:
        measured = f"failed ({r.failure})" if r.failure else seconds_text(r.seconds) if r.seconds else "not run (--dry-run)"
        if r.parts and not r.failure:
            measured += "; " + ", ".join(f"{part} {seconds_text(values)}" for part, values in r.parts.items())
        claim = readme_claims(r.figure, readme)
        command = shlex.join(r.figure.command(Path("DIR"), ["python3", "-m", "tox"])).replace(sys.executable, "python")
        command = command.replace(sec_cybert_command(), "sec-cybert")
        rows.append(
            f"| {r.figure.what} | {claim} | {measured} | {r.load_before:.2f} → {r.load_after:.2f} | `{command}` |"
        )
    return "\n".join(
        [
            START,
            "## The README's figures",
            "",
            f"Measured {when} by `{how}` at commit {where}. Machine: {machine()}. {quietness(results, start_load)}",
            "",
            "| figure | the README says | measured | load average before → after | command |",
            "|---|---|---|---|---|",
            *rows,
            END,
        ]
    )


def update_results(text: str, new_section: str) -> str:
    """``text`` with its README-figures section replaced by ``new_section``, or with it appended."""
    pattern = re.compile(re.escape(START.split(" (")[0]) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: new_section, text, count=1)
    return text.rstrip("\n") + "\n\n" + new_section + "\n"


def check_prerequisites(names: Sequence[str], tox: list[str]) -> list[str]:
    problems = []
    if "demo" in names and not Path(sec_cybert_command()).is_file():
        problems.append("no sec-cybert command beside this Python or on PATH: pip install -e . in the venv you run this with")
    if "yaml-fast" in names and not (ROOT / "examples" / "pipeline_from_yaml.py").is_file():
        problems.append("examples/pipeline_from_yaml.py is missing")
    if {"tests", "fast-lane"} & set(names):
        probe = subprocess.run([*tox, "--version"], capture_output=True, text=True)
        if probe.returncode != 0:
            problems.append(f"`{shlex.join(tox)} --version` failed: python3 -m pip install tox (the README's test command), or pass --tox")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", action="store_true", help="also the full test command (tox -r: several minutes)")
    parser.add_argument("--fast-lane", action="store_true", help='also the fast lane, tox -- -m "not slow" (minutes)')
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command (the median is reported)")
    parser.add_argument("--tox", default="python3 -m tox", help="how to run tox (default: the README's python3 -m tox)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="the file to update")
    parser.add_argument("--dry-run", action="store_true", help="print what would run and the table's shape; run and write nothing")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = ["demo", "yaml-fast"] + ["tests"] * args.tests + ["fast-lane"] * args.fast_lane
    tox = shlex.split(args.tox)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    problems = check_prerequisites(names, tox)
    if problems:
        log("cannot measure: " + "; ".join(problems))
        return 2
    start_load = load_average()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    how = shlex.join(["python", "benchmarks/readme_figures.py", *(argv if argv is not None else sys.argv[1:])])
    if args.dry_run:
        results = [Measurement(FIGURES[name], load_before=start_load, load_after=start_load) for name in names]
        for result in results:
            log(f"would run {result.figure.name}: {shlex.join(result.figure.command(Path('DIR'), tox))}")
        print(section(results, readme, when=when, how=how, where=git_commit(), start_load=start_load))
        return 0
    env = {**os.environ, **OFFLINE}
    results = [measure(FIGURES[name], tox, args.repeat, env, log) for name in names]
    text = section(results, readme, when=when, how=how, where=git_commit(), start_load=start_load)
    previous = args.results.read_text(encoding="utf-8") if args.results.is_file() else "# Benchmark results\n"
    args.results.write_text(update_results(previous, text), encoding="utf-8")
    print(text)
    log(f"written to {args.results}")
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
