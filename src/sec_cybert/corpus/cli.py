"""``sec-cybert corpus ...``: fetch, build, item1c, stats, select.

Heavy modules are imported inside each command so ``sec-cybert --help`` stays fast. Errors a
user can fix are raised as SecCybertError subclasses; the main CLI prints them as one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from sec_cybert.errors import ConfigError, DataError


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.group("corpus")
def corpus() -> None:
    """Real SEC corpus: EDGAR 10-K filings → clean DAPT shards and Item 1C paragraphs."""


@corpus.command("fetch")
@click.option(
    "--forms", multiple=True, default=("10-K",), show_default=True, help="Form types, comma separated."
)
@click.option(
    "--years", default="2023-2025", show_default=True, help="Period-of-report years, YEAR or FIRST-LAST."
)
@click.option("--ciks", multiple=True, help="Company CIKs, comma separated.")
@click.option(
    "--tickers", multiple=True, help="Ticker symbols, comma separated (resolved with company_tickers.json)."
)
@click.option("--user-agent", envvar="SEC_CYBERT_USER_AGENT", help="'Name email' as the SEC requires.")
@click.option(
    "--cache", type=click.Path(path_type=Path), required=True, help="Directory for the downloaded HTML."
)
@click.option("--rate", type=float, default=10.0, show_default=True, help="Requests per second (at most 10).")
@click.option("--threads", type=int, default=4, show_default=True, help="Downloads at once (--rate still caps them all).")
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Retries of a failed request, with growing waits.",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per read.")
@click.option(
    "--deadline",
    type=float,
    default=None,
    help="Seconds per whole request, however slowly the server sends (default: 20 x --timeout).",
)
@click.option("--data-base", default="https://data.sec.gov", show_default=True, hidden=True)
@click.option("--archives-base", default="https://www.sec.gov/Archives", show_default=True, hidden=True)
@click.option("--tickers-url", default="https://www.sec.gov/files/company_tickers.json", hidden=True)
@click.option("--backoff", type=float, default=1.0, hidden=True, help="First retry delay in seconds.")
def fetch_command(
    forms,
    years,
    ciks,
    tickers,
    user_agent,
    cache,
    rate,
    threads,
    max_retries,
    timeout,
    deadline,
    data_base,
    archives_base,
    tickers_url,
    backoff,
) -> None:
    """Download filings from SEC EDGAR into --cache (resumable: cached filings are skipped)."""
    from sec_cybert.corpus.fetch import (
        EdgarEndpoints,
        RetryPolicy,
        check_user_agent,
        fetch_filings,
        parse_years,
    )

    check_user_agent(user_agent)
    try:
        cik_numbers = [int(c) for c in _split(ciks)]
    except ValueError as exc:
        raise ConfigError(f"--ciks must be numbers ({exc})") from exc
    summary = fetch_filings(
        cache,
        user_agent=user_agent,
        ciks=cik_numbers,
        tickers=_split(tickers),
        forms=_split(forms),
        years=parse_years(years),
        endpoints=EdgarEndpoints(data_base.rstrip("/"), archives_base.rstrip("/"), tickers_url),
        max_requests_per_second=rate,
        retry=RetryPolicy(max_retries=max_retries, backoff_base=backoff),
        timeout=timeout,
        deadline=deadline,
        threads=threads,
        progress=True,
    )
    (cache / "fetch-report.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    click.echo(
        f"{summary.filings} filings from {summary.companies} companies: "
        f"{summary.downloaded} downloaded, {summary.cached} already cached, {len(summary.failed)} failed"
        + (f", {len(summary.skipped)} skipped" if summary.skipped else "")
    )
    for reason, count in sorted(summary.skipped_by_reason.items()):
        click.echo(f"  skipped {count}: {reason}")
    if summary.failed:
        raise DataError(
            f"{len(summary.failed)} downloads failed (listed in {cache / 'fetch-report.json'}); "
            "re-run the same command to retry them, cached filings are skipped"
        )


@corpus.command("build")
@click.option(
    "--html", "html_dir", type=click.Path(path_type=Path), required=True, help="Cached HTML filings."
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output shard directory."
)
@click.option(
    "--min-chars", type=int, default=10_000, show_default=True, help="Drop shorter cleaned documents."
)
@click.option("--docs-per-shard", type=int, default=1000, show_default=True, help="Documents per shard-*.jsonl file.")
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--overwrite", is_flag=True, help="Replace shards already in --out.")
def build_command(html_dir, out_dir, min_chars, docs_per_shard, workers, overwrite) -> None:
    """Clean filings into shard-*.jsonl plus report.json and skipped.jsonl."""
    from sec_cybert.corpus.build import build_shards

    summary = build_shards(
        html_dir,
        out_dir,
        min_chars=min_chars,
        docs_per_shard=docs_per_shard,
        workers=workers,
        overwrite=overwrite,
        progress=True,
    )
    click.echo(
        f"kept {summary.kept} of {summary.files} filings ({summary.chars_kept:,} chars) "
        f"in {len(summary.shards)} shards"
    )
    for reason, count in sorted(summary.skipped.items()):
        click.echo(f"  skipped {count}: {reason}")
    for warning, count in sorted(summary.warnings.items()):
        click.echo(f"  warning {count}: {warning}")


@corpus.command("item1c")
@click.option(
    "--html", "html_dir", type=click.Path(path_type=Path), required=True, help="Cached HTML filings."
)
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path), required=True, help="Paragraphs JSONL file."
)
@click.option(
    "--min-words", type=int, default=8, show_default=True, help="Shorter blocks are headings/fragments."
)
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
def item1c_command(html_dir, out_file, min_words, workers) -> None:
    """Extract Item 1C (Cybersecurity) paragraphs with their filing metadata."""
    from sec_cybert.corpus.build import build_item1c, report_path_for
    from sec_cybert.corpus.item1c import SegmentOptions
    from sec_cybert.corpus.tag_check import TagCheckTally

    try:
        options = SegmentOptions(min_words=min_words)
    except ValueError as exc:
        raise ConfigError(f"--min-words: {exc}") from exc
    summary = build_item1c(html_dir, out_file, options=options, workers=workers, progress=True)
    click.echo(
        f"{summary.paragraphs} paragraphs from {summary.with_item1c} of {summary.filings} filings "
        f"(report: {report_path_for(out_file)})"
    )
    for reason, count in sorted(summary.without_item1c.items()):
        click.echo(f"  no Item 1C in {count}: {reason}")
    tagged = TagCheckTally(**summary.tag_check).summary() if summary.tag_check else None
    if tagged:
        click.echo(f"  {tagged}; each filing is listed in the report")


@corpus.command("stats")
@click.argument("shards", type=click.Path(path_type=Path))
@click.option("--tokenizer", required=True, help="Local tokenizer directory or hub name.")
@click.option(
    "--seq-len", type=int, default=8192, show_default=True, help="Sequence length the table counts documents and blocks against."
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON file (default SHARDS/stats.json).",
)
def stats_command(shards, tokenizer, seq_len, out_file) -> None:
    """Print the corpus table and write it as JSON."""
    from sec_cybert.corpus.stats import corpus_stats, load_tokenizer

    stats = corpus_stats(shards, load_tokenizer(tokenizer), seq_len=seq_len, tokenizer_name=tokenizer)
    target = out_file or ((shards if shards.is_dir() else shards.parent) / "stats.json")
    target.write_text(json.dumps(stats.as_dict(), indent=2) + "\n", encoding="utf-8")
    click.echo(stats.table())


@corpus.command("select")
@click.argument("shards", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for the selected shards."
)
@click.option("--tokenizer", required=True, help="Tokenizer that defines the token budget.")
@click.option(
    "--max-tokens", type=int, default=None, help="Token budget; newest filings first (default: all)."
)
@click.option("--dedupe/--no-dedupe", default=True, show_default=True, help="Remove exact duplicate texts.")
@click.option("--docs-per-shard", type=int, default=1000, show_default=True, help="Documents per shard-*.jsonl file.")
@click.option(
    "--overwrite", is_flag=True, help="Replace shards already in --out (and an unfinished selection's leftovers)."
)
def select_command(shards, out_dir, tokenizer, max_tokens, dedupe, docs_per_shard, overwrite) -> None:
    """Subsample to --max-tokens, newest filing date first, after exact-duplicate removal."""
    from sec_cybert.corpus.build import select_corpus
    from sec_cybert.corpus.stats import load_tokenizer

    result = select_corpus(
        shards,
        out_dir,
        tokenizer=load_tokenizer(tokenizer),
        max_tokens=max_tokens,
        dedupe=dedupe,
        docs_per_shard=docs_per_shard,
        overwrite=overwrite,
    )
    s = result.selection
    click.echo(
        f"kept {s['documents_kept']} of {s['documents_in']} documents ({s['tokens_kept']:,} tokens, "
        f"{s['oldest_kept']} .. {s['newest_kept']}); {result.duplicates_removed} duplicates removed"
    )
