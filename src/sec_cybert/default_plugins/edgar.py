"""Built-in plugin: the ``edgar-html`` corpus source and the ``corpus`` command group.

Importing this module is cheap: selectolax and httpx (the ``corpus`` extra) are imported only
when a filing is cleaned or downloaded.
"""

from __future__ import annotations

from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl
def register_corpus_sources(register):
    from sec_cybert.corpus.edgar_source import EdgarHtmlFilings

    register("edgar-html", EdgarHtmlFilings)


@hookimpl
def register_commands(cli):
    from sec_cybert.corpus.cli import corpus

    cli.add_command(corpus)
