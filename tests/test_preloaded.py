"""``sec_cybert.testing.preloaded``: a forked process answers as ``python ARGS`` would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sec_cybert.testing.preloaded import PreloadedPython


def test_output_argv_environment_and_directory_are_the_commands_own(preloaded_python, tmp_path):
    code = "import os, sys; print(sys.argv, os.getcwd(), os.environ['ONLY_HERE']); os.write(2, b'fd 2\\n')"
    done = preloaded_python.run(["-c", code, "one", 2], env={**os.environ, "ONLY_HERE": "yes"}, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"['-c', 'one', '2'] {tmp_path} yes\n", "fd 2\n")
    assert "ONLY_HERE" not in os.environ and os.getcwd() != str(tmp_path)


@pytest.mark.parametrize(
    ("code", "status", "said"),
    [
        ("import os; print('kept', flush=True); os._exit(137)", 137, ""),
        ("raise SystemExit(3)", 3, ""),
        ("raise SystemExit('a message')", 1, "a message\n"),
        ("1 / 0", 1, "ZeroDivisionError: division by zero\n"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM, ""),
    ],
    ids=["os._exit", "exit-status", "exit-message", "exception", "signal"],
)
def test_an_end_gives_the_status_an_interpreter_would(preloaded_python, code, status, said):
    done = preloaded_python.run(["-c", code])
    assert done.returncode == status
    assert done.stderr.endswith(said)
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fresh.returncode == status


def test_a_script_runs_as_main_with_its_directory_on_the_path_and_its_atexit_functions(preloaded_python, tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 41\n")
    script = tmp_path / "script.py"
    script.write_text(
        "import atexit, pickle, sys\n"
        "import helper\n"
        "class Defined: pass\n"
        "atexit.register(print, 'at exit')\n"
        "if __name__ == '__main__':\n"
        "    print(pickle.loads(pickle.dumps(Defined())).__class__.__module__, sys.argv[1:], helper.VALUE + 1)\n"
    )
    done = preloaded_python.run([script, "x"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "__main__ ['x'] 42\nat exit\n"


def test_a_process_past_its_timeout_is_killed_and_reported(preloaded_python):
    with pytest.raises(subprocess.TimeoutExpired):
        preloaded_python.run(["-c", "import time; time.sleep(60)"], timeout=1)


def test_a_command_line_without_a_script_is_refused():
    with pytest.raises(ValueError, match="a script's path or -c CODE"):
        PreloadedPython().run(["-c"])
