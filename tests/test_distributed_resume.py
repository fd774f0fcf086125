"""Kill-and-resume under torchrun: two CPU processes (gloo), every process SIGKILLed after a
checkpoint, the same command run again, and the weights end bit-identical to a run that was
never interrupted -- as ``tests/test_reliability.py`` checks for one process.

The killed run is held after a chosen step by a Trainer callback (every rank writes its pid and
then waits), so the kill lands at a known point whatever the machine's speed: the test waits on
files, never on the clock. The kill is real: SIGKILL to torchrun's process group and to each
rank's (torchrun starts every worker in a session of its own, so one ``killpg`` does not reach
them), as a scheduler or a lost node ends a job. The resume is the uninterrupted run's own
command (``sec-cybert run`` under torchrun), pointed at the killed run's directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from sec_cybert.stages.checkpointing import verify
from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus


def _torchrun() -> str | None:
    beside = Path(sys.executable).parent / "torchrun"
    return str(beside) if beside.exists() else shutil.which("torchrun")


def _gloo() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    return dist.is_available() and dist.is_gloo_available()


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_torchrun() is None, reason="torchrun not installed"),
    pytest.mark.skipif(not _gloo(), reason="torch.distributed with gloo not available"),
]

#: 165 training blocks of the tiny DAPT corpus, 8 a rank and step: 11 steps an epoch (the last
#: one short). Held here in the killed run: checkpoint-8 is complete, step 9 trained and not
#: saved, so the resume redoes a step, ends the epoch on its short batch and starts the next.
PAUSE_AFTER_STEP = 9
LAST_CHECKPOINT = 8
MAX_STEPS = 14
#: For every wait on a file or a process: a busy 2-core machine is slow, never this slow.
PATIENCE_S = 600

#: The CLI, run by each rank; with a step number, every rank stops after that step, writes
#: ``paused-rank<R>`` (its pid) into the marks directory and waits there to be killed.
#: tiny-modernbert has no dropout, so nothing would draw from torch's RNG and a wrong RNG state
#: after the resume would go unnoticed: every run here trains with dropout 0.1 (embeddings, MLP),
#: drawn on each rank from its own generator, which the resume must restore per rank
#: (``rng_state_<rank>.pth``) for the weights to come out the same.
RUNNER = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    import torch, transformers
    from sec_cybert import cli

    config, run, pause_after, marks = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])

    class Pause(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == pause_after:
                mark = marks / f"paused-rank{os.environ['RANK']}"
                mark.with_suffix(".part").write_text(str(os.getpid()))
                os.replace(mark.with_suffix(".part"), mark)
                threading.Event().wait()

    init = transformers.Trainer.__init__
    def with_dropout_and_pause(self, *args, **kwargs):
        init(self, *args, **kwargs)
        for module in self.model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.1
        if pause_after:
            self.add_callback(Pause())
    transformers.Trainer.__init__ = with_dropout_and_pause
    sys.exit(cli.main(["-q", "run", config, "--out", run]))
    """
)


def _config(root: Path) -> Path:
    config = tiny_pipeline_config(write_tiny_corpus(root / "corpus"), finetune=False)
    config["stages"] = [config["stages"][0]]  # DAPT
    config["stages"][0]["training"].update(
        per_device_train_batch_size=8, max_steps=MAX_STEPS, save_steps=4, save_total_limit=2, logging_steps=1
    )
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _command(root: Path, run: Path, pause_after: int, marks: Path) -> list[str]:
    script = root / "runner.py"
    script.write_text(RUNNER)
    # --standalone: a rendezvous on a free port, so runs beside each other (or another test's
    # torchrun) never meet on 29500.
    return [
        _torchrun(),
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(root / "config.yaml"),
        str(run),
        str(pause_after),
        str(marks),
    ]


def _env() -> dict[str, str]:
    # CPU and gloo even on a GPU machine; one thread a rank, so two ranks fit two cores.
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "SEC_CYBERT_PLUGINS": ""}


def _start(root: Path, run: Path, pause_after: int, name: str) -> subprocess.Popen:
    marks = root / f"marks-{name}"
    marks.mkdir()
    with (root / f"{name}.out").open("w") as out, (root / f"{name}.err").open("w") as err:
        # A session of its own: its process group is torchrun's, apart from pytest's.
        return subprocess.Popen(
            _command(root, run, pause_after, marks),
            stdout=out,
            stderr=err,
            env=_env(),
            start_new_session=True,
        )


def _finish(root: Path, process: subprocess.Popen, name: str) -> None:
    try:
        code = process.wait(timeout=PATIENCE_S)
    except subprocess.TimeoutExpired:
        _kill_run(process, [])
        raise
    assert code == 0, (root / f"{name}.err").read_text()[-4000:]


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (its ranks, for torchrun), where /proc tells."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_run(agent: subprocess.Popen, ranks: list[int]) -> list[int]:
    """SIGKILL to torchrun's process group and to each rank's: torchrun starts every worker in a
    session of its own, so killing torchrun's group alone would leave the ranks running. Returns
    the ranks' pids."""
    ranks = sorted(set(ranks) | set(_children(agent.pid)))
    for pgid in (agent.pid, *ranks):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return ranks


def _gone(pid: int) -> bool:
    """``pid`` has exited (a zombie left for init to reap counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_for(what: str, ready, agent: subprocess.Popen, err: Path) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not ready():
        if agent.poll() is not None:
            pytest.fail(f"torchrun exited ({agent.returncode}) before {what}:\n{err.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {PATIENCE_S} s:\n{err.read_text()[-4000:]}")
        time.sleep(0.2)


def _weights(run: Path):
    from safetensors.torch import load_file

    return load_file(run / "dapt" / "model.safetensors")


def _training_log(run: Path):
    lines = (run / "dapt" / "training-log.jsonl").read_text().splitlines()
    return [(e["event"], e["step"], e.get("loss"), e.get("train_loss")) for e in map(json.loads, lines)]


def _record(run: Path):
    return json.loads((run / "dapt" / "stage.json").read_text())


def test_a_torchrun_run_killed_after_a_checkpoint_resumes_to_bit_identical_weights(tmp_path):
    _config(tmp_path)
    reference, run = tmp_path / "reference", tmp_path / "run"

    # 1. The run never interrupted.
    _finish(tmp_path, _start(tmp_path, reference, 0, "reference"), "reference")

    # 2. The same run, held after step 9 and killed there: torchrun and both ranks, SIGKILL.
    agent = _start(tmp_path, run, PAUSE_AFTER_STEP, "killed")
    marks = tmp_path / "marks-killed"
    pids: list[int] = []
    try:
        _wait_for(
            f"both ranks held after step {PAUSE_AFTER_STEP}",
            lambda: all((marks / f"paused-rank{r}").is_file() for r in (0, 1)),
            agent,
            tmp_path / "killed.err",
        )
        pids = [int((marks / f"paused-rank{r}").read_text()) for r in (0, 1)]
        checkpoint = run / "dapt" / "checkpoints" / f"checkpoint-{LAST_CHECKPOINT}"
        assert verify(checkpoint) is None  # the newest complete checkpoint, manifest and all
        # Each rank's RNG state is in it: the Trainer writes rng_state_<rank>.pth under DDP.
        assert {p.name for p in checkpoint.glob("rng_state*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    finally:
        pids = _kill_run(agent, pids)
    assert agent.wait(timeout=PATIENCE_S) == -signal.SIGKILL
    deadline = time.monotonic() + PATIENCE_S
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "a rank outlived SIGKILL"
        time.sleep(0.1)
    assert not (run / "dapt" / "stage.json").exists()
    assert not (run / "dapt" / "checkpoints" / f"checkpoint-{PAUSE_AFTER_STEP + 1}").exists()

    # 3. The uninterrupted run's command, in the killed run's directory.
    _finish(tmp_path, _start(tmp_path, run, 0, "resumed"), "resumed")

    record = _record(run)
    assert record["report"]["resumed_from"].endswith(f"checkpoint-{LAST_CHECKPOINT}")
    assert record["report"]["world_size"] == 2
    ours, theirs = _weights(run), _weights(reference)
    assert ours.keys() == theirs.keys()
    different = [
        name
        for name in ours
        if not (ours[name].dtype == theirs[name].dtype and ours[name].equal(theirs[name]))
    ]
    assert not different, f"{len(different)} of {len(ours)} tensors differ, e.g. {different[:3]}"
    # Every step logged once, with the uninterrupted run's losses; the same step count, train_loss
    # (summed from step 1 across the resume) and eval_loss.
    assert _training_log(run) == _training_log(reference)
    assert record["metrics"] == _record(reference)["metrics"]
    assert record["metrics"]["global_step"] == MAX_STEPS
    epochs = [
        json.loads(line).get("epoch", 0)
        for line in (run / "dapt" / "training-log.jsonl").read_text().splitlines()
    ]
    assert max(epochs) > 1  # the resumed part crossed into the second epoch
