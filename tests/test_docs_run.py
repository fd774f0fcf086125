"""Every code block in docs/*.md runs as a reader would run it: offline, on a CPU, in fast mode.

What sybil does, what is ours
-----------------------------
sybil reads the pages: its fenced-block lexer finds every block (indented ones in lists too),
each page is a ``sybil.Document`` whose blocks are its ``Example``\\ s, the Python blocks of a page
share the document's namespace (a block sees the names of the blocks before it), and the
``Sybil`` object's ``setup``/``teardown`` run once around a page. Ours (``DocsBlocks``, the one
sybil parser here) is the skip rule below, which gives each block its evaluator, and the
evaluators: Python in fast mode, commands, and parsing. Pages run as one test each, in order
(``PAGES``; the tutorial first, since it writes the demo that other pages read), each in a fresh
temporary directory that is the working directory of its blocks; a page's blocks run in order:

* ```` ```python ````: executed in the page's namespace.
* ```` ```bash ````, ```` ```console ````, ```` ```sh ````: commands. In a console block the
  ``$ `` lines are commands and the lines after one are its shown output; in a bash block every
  line is a command (``\\`` continues a line, ``#`` starts a comment). ``sec-cybert ...``, with
  ``VAR=value`` prefixes, runs in this process through ``sec_cybert.cli.main``; ``cd DIR`` moves
  the rest of the block to DIR; ``cat``, ``cp``, ``mkdir``, ``ls`` and ``echo`` run in bash.
  Anything else fails the test: give the block a skip marker (below).
  The exit status must be 2 when the shown output has an ``error:`` line, else 0: a console
  block that shows a command failing runs it and checks that it fails so. The shown output is
  compared with what the command printed (stdout, then stderr without structlog's log lines) for
  every command that trains nothing (validate, plan, split, plugins ...) and for every command
  shown failing: line by line, where a line ``...`` stands for any lines and ``...`` inside a
  line for any text. The output of a training command (demo, run, dapt, tapt, finetune, ablate)
  that succeeds is not compared: fast mode changes its numbers.
* ```` ```yaml ````, ```` ```toml ````, ```` ```json ````: parsed.
* A block without a language (or ```` ```text ````) is what a page shows a command print, a
  directory tree or log lines: nothing to run.

Paths: every ``/tmp/NAME`` in a block, code and shown output alike, is rewritten to ``ROOT/NAME``,
where ROOT is one temporary directory shared by the pages of a test session: plugins.md reads the
``/tmp/docdemo`` that the tutorial's ``sec-cybert demo --out /tmp/docdemo`` writes. A page that
uses ``/tmp/docdemo`` without running that command itself gets it run first (``setup_page``) if
no page has yet.

Fast mode (the default): every Trainer stops after ``FAST_STEPS`` optimizer steps
(conftest's ``fast_trainers``: ``Training.trainer_arguments`` is wrapped to pass ``max_steps=min(max_steps, FAST_STEPS)``),
and torch runs on one thread (restored afterwards).
Configs, fingerprints and ``plan`` are untouched, so what ``plan`` prints is what the pages show.
``SEC_CYBERT_FAST=0`` runs every block at its full length (minutes, not seconds).

The skip rule: what does not run
--------------------------------
The first rule that applies decides (``classify``):

1. ``hooks.md`` is generated from ``sec_cybert/plugins/hookspecs.py`` (test_docs.py checks that it is
   current); its blocks are signatures, not programs.
2. An HTML comment on the lines before a block (blank lines between are fine; the site does not
   show it): ``<!-- docs-test skip: REASON -->`` skips the block; ``<!-- docs-test compile:
   REASON -->`` only compiles (Python) or parses it: an excerpt whose names are defined
   elsewhere; ``<!-- docs-test defer: REASON -->`` runs it after the page's other blocks (it reads
   what a later block writes).
3. A block without a language (or ``text``): output, a tree or log lines, not a program. This
   is where the pages' shown errors and expected outputs without a command live.
4. A block whose paragraph (the one right before it) or heading is marked **(hub)** or
   **(GPU)** (or **(hub, GPU)**), the tutorial's convention: it downloads a model or needs CUDA.
5. A block that cannot run offline on a CPU in seconds by what it says: ``pip install``,
   ``torchrun``, ``accelerate launch``, an EDGAR download (``corpus fetch``), a hub model id
   (``answerdotai/...``, ``chandar-lab/...``), or a training command on a shipped config
   (``configs/{dapt,tapt,finetune,pipeline}/*.yaml`` train ModernBERT-large from the hub on the
   real corpus).
6. A block headed by a file name (a paragraph that is only ```` `path/to/file`: ````) is that
   file's text, not a step to run: compiled or parsed. tests/plugins/test_freeze_plugin.py checks
   that the sec-cybert-freeze files shown in plugins.md are the package's files.
7. Otherwise: yaml, toml and json are parsed; python, bash and console run.

Preconditions that a page states in prose (or in a comment) and no block performs are set up
by ``PRECONDITIONS`` below, each naming the page, the command it prepares and the sentence it
implements: markers cannot say them, and the tutorial's "The YAML route" needed them.

``python tests/test_docs_run.py`` prints every block with what the rule decided.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog
import yaml
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT_DIR = Path(__file__).resolve().parents[1]
DOCS = ROOT_DIR / "docs"

#: Run order: the tutorial writes /tmp/docdemo and /tmp/sec-cybert-tutorial, which others read.
PAGES = [
    "tutorial.md",
    "index.md",
    "demo-corpus.md",
    "configs.md",
    "corpus.md",
    "architecture.md",
    "masking.md",
    "plugins.md",
    "neobert-plugin.md",
    "reliability.md",
    "api.md",
    "hooks.md",
]

FAST = os.environ.get("SEC_CYBERT_FAST", "1") != "0"

RUN_LANGUAGES = {"python", "bash", "console", "sh", "shell"}
PARSE_LANGUAGES = {"yaml", "toml", "json"}
OUTPUT_LANGUAGES = {"", "text"}
SHELL_COMMANDS = {"cat", "cp", "mkdir", "ls", "echo"}
TRAINING_COMMANDS = {"demo", "run", "dapt", "tapt", "finetune", "ablate"}

MARKER = re.compile(r"<!--\s*docs-test\s+(skip|compile|defer):\s*(.*?)\s*-->", re.DOTALL)
HUB_OR_GPU = re.compile(r"\((?:hub|GPU)(?:,\s*(?:hub|GPU))?\)")
FILE_HEADING = re.compile(r"^`[^`\s]+`:$")
HEADING = re.compile(r"^#{1,6} .*$", re.MULTILINE)
CANNOT_RUN = [
    (re.compile(r"\bpip install\b"), "installs packages (pip install)"),
    (re.compile(r"\btorchrun\b"), "launches several processes (torchrun)"),
    (re.compile(r"\baccelerate launch\b"), "launches several processes (accelerate launch)"),
    (re.compile(r"\bcorpus fetch\b"), "downloads filings from EDGAR"),
    (re.compile(r"\b(?:answerdotai|chandar-lab)/"), "downloads a model from the hub"),
    (
        re.compile(r"sec-cybert\s+(?:-\S+\s+)*(?:run|dapt|tapt|finetune|ablate)\b.*\bconfigs/(?:dapt|tapt|finetune|pipeline)/"),
        "trains a shipped config: ModernBERT-large from the hub on the real corpus",
    ),
]
LOG_LINE = re.compile(r"^(?:\S+ ){0,2}\[(?:debug|info|warning|error|critical)\s*\]")
TMP_PATH = re.compile(r"(?<![\w./-])/tmp/(?=[\w.-])")
#: The document namespace's key for the running page (a dunder, so no block's name clashes).
PAGE = "__docs_page__"


# --- the skip rule -------------------------------------------------------------------------------
@dataclass
class Block:
    """What the rule reads of a fenced block; sybil's ``Region.parsed`` for it."""

    language: str
    text: str
    before: str  # the page's text between the previous block and this one
    heading: str  # the nearest heading above
    action: str = ""  # run, compile, defer, skip, output
    reason: str = ""


def marker_of(block: Block) -> tuple[str, str] | None:
    """The docs-test marker that ends the text before the block, if one does."""
    found = list(MARKER.finditer(block.before))
    if found and not block.before[found[-1].end() :].strip():
        return found[-1].group(1), found[-1].group(2)
    return None


def _last_paragraph(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", MARKER.sub("", text)) if p.strip()]
    return paragraphs[-1] if paragraphs else ""


def classify(block: Block, page: str) -> tuple[str, str]:
    """The skip rule of the module docstring, in its order: (action, reason)."""
    paragraph = _last_paragraph(block.before)
    if page == "hooks.md":
        return "skip", "generated from hookspecs.py (test_docs.py checks it); signatures"
    if marker := marker_of(block):
        return marker
    if block.language in OUTPUT_LANGUAGES:
        return "output", "shows output, not a program"
    if HUB_OR_GPU.search(paragraph) or HUB_OR_GPU.search(block.heading):
        return "skip", "marked (hub) or (GPU)"
    for pattern, reason in CANNOT_RUN:
        if pattern.search(block.text):
            return "skip", reason
    if FILE_HEADING.match(paragraph):
        return "compile", f"the text of the file {paragraph[:-1]}"
    if block.language in PARSE_LANGUAGES:
        return "compile", "configuration text"
    if block.language in RUN_LANGUAGES:
        return "run", ""
    return "skip", f"language {block.language!r}: neither run nor parsed"


class DocsBlocks:
    """The sybil parser: every fenced block (with a language or without), decided by the rule
    and given its evaluator; skipped blocks and output get none."""

    lexer = RawFencedCodeBlockLexer(
        info_pattern=re.compile(r"[ \t]*(?P<language>[\w+-]*)[^\n]*$\n", re.MULTILINE),
        mapping={"language": "language", "source": "source"},
    )

    def __call__(self, document: Document) -> Iterator[Region]:
        heading, previous_end = "", 0
        for region in sorted(self.lexer(document), key=lambda r: r.start):
            before = document.text[previous_end : region.start]
            heading = ([heading] + HEADING.findall(before))[-1]
            previous_end = region.end
            block = Block(region.lexemes["language"].lower(), str(region.lexemes["source"]), before, heading)
            block.action, block.reason = classify(block, Path(document.path).name)
            region.parsed, region.evaluator = block, evaluator_for(block)
            yield region


# --- preconditions stated in prose -------------------------------------------------------------
@dataclass
class Precondition:
    page: str
    command: str  # the command as the page writes it, without "$ "
    says: str  # the sentence of the page this implements
    prepare: Callable[[Path, Path], Path | None]  # (cwd, root) -> the command's cwd, or None


def _holding_the_data(cwd: Path, root: Path) -> Path:
    """A directory holding the data the shipped pipeline config names, from the demo corpus."""
    place = cwd / "holding-the-data"
    data, demo = place / "data", root / "docdemo" / "data"
    (data / "labels").mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo / "dapt", data / "dapt-corpus", dirs_exist_ok=True)
    shutil.copy(demo / "tapt" / "paragraphs.jsonl", data / "paragraphs-clean.patched.jsonl")
    for split in ("train", "eval", "holdout"):
        shutil.copy(demo / "labeled" / f"{split}.jsonl", data / "labels" / f"{split}.jsonl")
    return place


def _quick_yaml(cwd: Path, root: Path) -> None:
    config = yaml.safe_load((root / "docdemo" / "demo.yaml").read_text(encoding="utf-8"))
    for stage in config["stages"]:
        stage.setdefault("training", {})["max_steps"] = 20
    config["output_dir"] = str(root / "yamlroute" / "run")
    (cwd / "quick.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _labeled_all(cwd: Path, root: Path) -> None:
    (cwd / "data").mkdir(exist_ok=True)
    with open(cwd / "data" / "labeled-all.jsonl", "w", encoding="utf-8") as out:
        for path in sorted((root / "docdemo" / "data" / "labeled").glob("*.jsonl")):
            out.write(path.read_text(encoding="utf-8"))


PRECONDITIONS = [
    Precondition("tutorial.md", "sec-cybert validate configs/pipeline/sec-cybert-large.yaml",
                 "# in a directory holding the data", _holding_the_data),
    Precondition("tutorial.md", "sec-cybert -q run quick.yaml",
                 "on a copy of the demo config with `max_steps: 20` in every stage and `output_dir: /tmp/yamlroute/run`",
                 _quick_yaml),
    Precondition("corpus.md", "sec-cybert split data/labeled-all.jsonl",
                 "(the demo's 840 labeled paragraphs, concatenated)", _labeled_all),
]


# --- the evaluators ----------------------------------------------------------------------------
@dataclass
class Page:
    """The running page, in its document's namespace: what the evaluators need besides the block."""

    name: str
    cwd: Path
    root: Path
    monkeypatch: pytest.MonkeyPatch
    blocks: list[Block] = field(default_factory=list)  # all of the page's, for setup_page


def rewrite_tmp(text: str, root: Path) -> str:
    return TMP_PATH.sub(lambda _: f"{root}/", text)


def where(example: Example) -> str:
    return f"docs/{Path(example.path).name}:{example.line}"


def compiled(example: Example, text: str):
    # Padded so that a traceback names the page's own line.
    return compile(pad(text, example.line), example.path, "exec")


def run_python(example: Example) -> None:
    page: Page = example.namespace[PAGE]
    code = compiled(example, rewrite_tmp(example.parsed.text, page.root))
    with page.monkeypatch.context() as patch:
        patch.chdir(page.cwd)
        exec(code, example.namespace)


def parse_text(example: Example) -> None:
    block: Block = example.parsed
    if block.language == "python":
        compiled(example, block.text)
    elif block.language == "yaml":
        list(yaml.safe_load_all(block.text))
    elif block.language == "toml":
        pytest.importorskip("tomllib").loads(block.text)
    elif block.language == "json":
        json.loads(block.text)


def output_matches(shown: list[str], printed: str) -> bool:
    """``...`` alone on a line: any lines; ``...`` in a line: any text; else exact (trailing spaces aside)."""
    pattern = ""
    for line in shown:
        if line.strip() in ("...", "…"):
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.rstrip().split("...")) + r"[ \t]*\n"
    actual = "".join(line.rstrip() + "\n" for line in printed.rstrip("\n").splitlines()) if printed.strip() else ""
    return re.fullmatch(pattern, actual) is not None


@dataclass
class Command:
    text: str  # as the page writes it
    shown: list[str] = field(default_factory=list)


def commands_of(block: Block, place: str = "") -> list[Command]:
    commands: list[Command] = []
    for line in block.text.splitlines():
        if commands and commands[-1].text.endswith("\\"):
            commands[-1].text = commands[-1].text[:-1] + " " + line.strip()
        elif block.language != "console":
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(Command(line.strip()))
        elif line.startswith("$ "):
            commands.append(Command(line[2:].strip()))
        elif commands:
            commands[-1].shown.append(line)
        elif line.strip():
            raise AssertionError(f"{place}: output before the first '$ ' command: {line!r}")
    for c in commands:
        while c.shown and not c.shown[-1].strip():
            c.shown.pop()
    return commands


def cli(argv: list[str], env: dict[str, str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``sec-cybert ARGV`` in this process: its exit status, and stdout then stderr without log lines."""
    from sec_cybert.cli import main
    from sec_cybert.plugins.registry import reset_plugin_manager

    stdout, stderr = io.StringIO(), io.StringIO()
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        reset_plugin_manager()
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                status = main(argv)
        finally:
            structlog.reset_defaults()
            reset_plugin_manager()
    errors = [line for line in stderr.getvalue().splitlines() if not LOG_LINE.match(line)]
    return status, stdout.getvalue() + "".join(line + "\n" for line in errors)


def run_commands(example: Example) -> None:
    page: Page = example.namespace[PAGE]
    cwd = page.cwd
    for command in commands_of(example.parsed, where(example)):
        text = rewrite_tmp(command.text, page.root)
        shown = [rewrite_tmp(line, page.root) for line in command.shown]
        condition = next((c for c in PRECONDITIONS if c.page == page.name and command.text.startswith(c.command)), None)
        cwd_for_command = (condition and condition.prepare(cwd, page.root)) or cwd
        for segment in (s.strip() for s in text.split(" && ")):
            words = shlex.split(segment, comments=True)
            if words and words[0] == "cd":
                cwd = cwd_for_command = (cwd / words[1]).resolve()
                continue
            run_one(f"{where(example)}: `{command.text}`", segment, words, shown, cwd_for_command, page)


def run_one(place: str, segment: str, words: list[str], shown: list[str], cwd: Path, page: Page) -> None:
    env = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words:
        return
    expected_status = 2 if any(line.startswith("error:") for line in shown) else 0
    if words[0] in SHELL_COMMANDS:
        done = subprocess.run(["bash", "-c", segment], cwd=cwd, capture_output=True, text=True)
        assert done.returncode == expected_status, f"{place}: `{segment}` exited {done.returncode}: {done.stderr}"
        return
    assert words[0] == "sec-cybert", (
        f"{place}: `{segment}`: the docs test runs sec-cybert and {sorted(SHELL_COMMANDS)} only; "
        "mark the block <!-- docs-test skip: REASON --> if it cannot run here"
    )
    status, printed = cli(words[1:], env, cwd, page.monkeypatch)
    assert status == expected_status, f"{place} exited {status}, expected {expected_status}:\n{printed}"
    options_with_values = {"--log-format"}
    subcommand = next((w for i, w in enumerate(words[1:], 1) if not w.startswith("-") and words[i - 1] not in options_with_values), "")
    if status == 0 and subcommand in TRAINING_COMMANDS:
        return  # fast mode changes what training prints
    matches = output_matches(shown, printed) if shown else True
    assert matches, f"{place}: the page shows\n" + "\n".join(shown) + f"\n\nbut it printed\n{printed}"


def evaluator_for(block: Block) -> Callable[[Example], None] | None:
    if block.action == "compile":
        return parse_text
    if block.action in ("run", "defer"):
        return run_python if block.language == "python" else run_commands
    return None  # skip, output


# --- a page: sybil's document, set up and torn down ---------------------------------------------
def _uses_the_demo(page: Page) -> bool:
    """It reads /tmp/docdemo (or a precondition does) and does not write it itself."""
    running = [b for b in page.blocks if b.action in ("run", "defer")]
    uses = any("/tmp/docdemo" in b.text for b in running) or any(c.page == page.name for c in PRECONDITIONS)
    writes = any(
        c.text.startswith("sec-cybert demo --out /tmp/docdemo") for b in running if b.language != "python" for c in commands_of(b)
    )
    return uses and not writes


def setup_page(namespace: dict) -> None:
    page: Page = namespace[PAGE]
    namespace["__name__"] = f"docs_{Path(page.name).stem.replace('-', '_')}"
    if _uses_the_demo(page) and not (page.root / "docdemo" / "demo.yaml").is_file():
        status, printed = cli(["-q", "demo", "--out", str(page.root / "docdemo")], {}, page.root, page.monkeypatch)
        assert status == 0, printed


def teardown_page(namespace: dict) -> None:
    from sec_cybert.plugins.registry import reset_plugin_manager

    reset_plugin_manager()  # a block may have registered a plugin object on the global manager


SYBIL = Sybil(parsers=[DocsBlocks()], setup=setup_page, teardown=teardown_page)


def run_page(path: Path, page: Page) -> Document:
    """sybil's document for the page, its blocks evaluated in order, deferred ones last."""
    document = SYBIL.parse(path)
    examples = list(document)
    page.blocks = [e.parsed for e in examples]
    document.namespace[PAGE] = page
    SYBIL.setup(document.namespace)
    try:
        for example in sorted(examples, key=lambda e: e.parsed.action == "defer"):
            example.evaluate()
    finally:
        SYBIL.teardown(document.namespace)
    return document


@pytest.fixture(scope="module")
def docs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("docs-root")


@pytest.fixture
def fast_mode(fast_trainers):
    """FAST_STEPS per Trainer (conftest's ``fast_trainers``), and torch on one thread: the tiny
    models gain nothing from a second one (15.0 s vs 16.1 s for the demo on 2 idle cores), and on
    a busy machine two spinning threads per process cost several times that."""
    if not FAST:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def offline(monkeypatch):
    for name, value in {
        "SEC_CYBERT_PLUGINS": "",  # the built-ins only: what the pages show
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_of_the_page_runs(page, docs_root, tmp_path, monkeypatch, offline, fast_mode):
    run_page(DOCS / page, Page(page, tmp_path, docs_root, monkeypatch))


# --- the runner on a page of our own, the rule itself, and the site (fast) ---------------------
RUNNER_PAGE = """\
# A page

```python
shared = 41
```

<!-- docs-test defer: reads what the next block writes -->

```python
assert open("/tmp/out/written.txt").read() == "42"
order.append("deferred")
```

```python
import os
order = ["first"]
os.makedirs("/tmp/out", exist_ok=True)
open("/tmp/out/written.txt", "w").write(str(shared + 1))
```

<!-- docs-test skip: would fail -->
```python
raise SystemExit("a skipped block ran")
```

```
raise SystemExit("output is not run")
```

```yaml
key: [1, 2]
```

```console
$ sec-cybert validate /tmp/nothere.yaml
error: config file '/tmp/nothere.yaml' does not exist ...
$ echo done
```
"""


def _runner_page(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Page]:
    (tmp_path / "page.md").write_text(text, encoding="utf-8")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "root").mkdir()
    return tmp_path / "page.md", Page("page.md", tmp_path / "cwd", tmp_path / "root", monkeypatch)


def test_the_runner_runs_a_page_in_order_with_defer_skip_and_paths(tmp_path, monkeypatch):
    path, page = _runner_page(tmp_path, RUNNER_PAGE, monkeypatch)
    document = run_page(path, page)
    assert (page.root / "out" / "written.txt").read_text() == "42"  # /tmp/out is ROOT/out
    assert document.namespace["order"] == ["first", "deferred"]
    assert [b.action for b in page.blocks] == ["run", "defer", "run", "skip", "output", "compile", "run"]


def test_the_runner_fails_a_page_whose_shown_output_differs(tmp_path, monkeypatch):
    path, page = _runner_page(tmp_path, RUNNER_PAGE.replace("does not exist ...", "is fine"), monkeypatch)
    with pytest.raises(AssertionError, match="the page shows"):
        run_page(path, page)


def test_every_page_is_run_and_in_the_site_nav():
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(PAGES) == pages, "add the new page to PAGES (and to mkdocs.yml's nav)"
    nav = yaml.safe_load((ROOT_DIR / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    listed = json.dumps(nav)
    assert [p for p in pages if f'"{p}"' not in listed] == []


def test_every_block_is_decided_with_a_reason():
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        examples = list(SYBIL.parse(DOCS / page))
        assert len(MARKER.findall(text)) == sum(marker_of(e.parsed) is not None for e in examples), (
            f"docs/{page}: a docs-test marker that is not right before a block"
        )
        for example in examples:
            block = example.parsed
            assert block.action in {"run", "compile", "defer", "skip", "output"}, block
            assert block.action == "run" or block.reason, f"{where(example)}: {block.action} without a reason"


def test_preconditions_name_commands_the_pages_have():
    for condition in PRECONDITIONS:
        running = [e.parsed for e in SYBIL.parse(DOCS / condition.page) if e.parsed.action == "run"]
        commands = [c.text for b in running if b.language != "python" for c in commands_of(b)]
        assert any(c.startswith(condition.command) for c in commands), f"{condition.page}: no `{condition.command}` to prepare"


def test_the_docs_extra_and_the_tox_docs_env_pin_the_same_packages():
    import configparser

    tomllib = pytest.importorskip("tomllib")
    extra = tomllib.loads((ROOT_DIR / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["docs"]
    tox = configparser.ConfigParser()
    tox.read(ROOT_DIR / "tox.ini", encoding="utf-8")
    deps = [line.strip() for line in tox["testenv:docs"]["deps"].splitlines() if line.strip()]
    assert sorted(deps) == sorted(extra)


def test_output_matching():
    assert output_matches(["a", "...", "c"], "a\nb\nb2\nc\n")
    assert output_matches(["a", "...", "c"], "a\nc\n")
    assert output_matches(["x: ... y"], "x: 1 2 y\n")
    assert not output_matches(["a", "c"], "a\nb\nc\n")
    assert output_matches(["a", "..."], "a\n")


if __name__ == "__main__":  # the decision for every block, for review
    for page in PAGES:
        for example in SYBIL.parse(DOCS / page):
            block = example.parsed
            first = block.text.strip().splitlines()[0][:70] if block.text.strip() else ""
            print(f"{where(example):28} {block.language or '-':8} {block.action:8} {block.reason[:70]:70} | {first}", file=sys.stdout)
