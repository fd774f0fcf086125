from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from sec_cybert.corpus.cli import corpus
from sec_cybert.errors import ConfigError, DataError


def test_plugin_registers_group_and_source():
    from sec_cybert.corpus.edgar_source import EdgarHtmlFilings
    from sec_cybert.default_plugins import edgar

    group = click.Group("sec-cybert")
    edgar.register_commands(cli=group)
    assert group.commands["corpus"] is corpus
    assert set(corpus.commands) == {"fetch", "build", "item1c", "stats", "select"}
    registered = {}
    edgar.register_corpus_sources(register=registered.__setitem__)
    assert registered == {"edgar-html": EdgarHtmlFilings}


def test_fetch_refuses_without_user_agent(tmp_path, monkeypatch):
    monkeypatch.delenv("SEC_CYBERT_USER_AGENT", raising=False)
    result = CliRunner().invoke(corpus, ["fetch", "--tickers", "AAPL", "--cache", str(tmp_path)])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
    assert "User-Agent" in str(result.exception)


def test_build_item1c_stats_select_end_to_end(html_dir, tmp_path, tiny_tokenizer_dir):
    runner = CliRunner()
    shards = tmp_path / "shards"
    result = runner.invoke(
        corpus,
        ["build", "--html", str(html_dir), "--out", str(shards), "--min-chars", "200", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "kept 3 of 7 filings" in result.output and "skipped 1: empty file" in result.output

    out = tmp_path / "item1c.jsonl"
    result = runner.invoke(corpus, ["item1c", "--html", str(html_dir), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output and out.exists()

    result = runner.invoke(
        corpus, ["stats", str(shards), "--tokenizer", str(tiny_tokenizer_dir), "--seq-len", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "median document tokens" in result.output
    assert json.loads((shards / "stats.json").read_text())["documents"] == 3

    selected = tmp_path / "selected"
    result = runner.invoke(
        corpus, ["select", str(shards), "--out", str(selected), "--tokenizer", str(tiny_tokenizer_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "kept 3 of 3 documents" in result.output


@pytest.mark.parametrize(
    "command", [["build", "--out", "X", "--html"], ["item1c", "--out", "X.jsonl", "--html"]]
)
def test_missing_html_dir_is_a_data_error(tmp_path, command):
    result = CliRunner().invoke(corpus, [*command, str(tmp_path / "nope")])
    assert isinstance(result.exception, DataError) and result.exit_code != 0


@pytest.mark.parametrize(("command", "out"), [("build", "shards"), ("item1c", "item1c.jsonl")])
def test_missing_selectolax_is_one_error_line_before_any_work(
    without_selectolax, html_dir, tmp_path, capsys, command, out
):
    from sec_cybert.cli import main

    target = tmp_path / "out" / out
    code = main(["corpus", command, "--html", str(html_dir), "--out", str(target), "--workers", "1"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: cleaning 10-K HTML needs the optional package 'selectolax': pip install 'sec-cybert[corpus]'"
    ]
    assert not (tmp_path / "out").exists()  # nothing was written, no filing counted as failed
