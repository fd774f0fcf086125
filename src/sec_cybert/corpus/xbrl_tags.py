"""The Item 1C text a filing tags itself: the SEC's ``cyd`` inline-XBRL text blocks.

10-Ks for fiscal years ending on or after 15 December 2024 wrap the Item 1C text in
``ix:nonNumeric`` facts named ``cyd:...TextBlock``. A fact that runs over a page break stops there
and goes on in an ``ix:continuation`` element: the fact's ``continuedAt`` names the continuation's
``id``, which may name a further one. Facts nest (a text block holds the flag facts of its
sentences, or another text block), and so do continuations; each piece of text is read once.
``ix:exclude`` content (page furniture inside a fact) is not part of the fact and is left out.

The text read here is only for checking the extracted section against it
(:mod:`sec_cybert.corpus.tag_check`); the corpus text itself comes from the cleaner, tags or not.
"""

from __future__ import annotations

from collections.abc import Iterator

# Item 1C sections run to some 10,000 characters; past this much a filing is not tagging Item 1C
# alone, and reading on would only cost time.
MAX_TAGGED_CHARS = 200_000

_FACT_TAGS = ("ix:nonnumeric", "ix:continuation")


def _is_cyd_text_block(node) -> bool:
    name = (node.attributes.get("name") or "").lower()
    return name.startswith("cyd:") and name.endswith("textblock")


def _pieces(root, seen: set[int]) -> Iterator[str]:
    """The text under ``root`` in reading order; nested facts and continuations are marked seen.

    Table cells are kept apart by a space: the check compares words, and two cells glued
    together would make one word of two.
    """
    stack = [root.iter(include_text=True)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        tag = child.tag
        if tag == "-text":
            yield child.text(deep=False)
        elif tag == "ix:exclude" or tag.startswith("-"):
            continue  # excluded content, comments
        else:
            if tag in _FACT_TAGS:
                if child.mem_id in seen:
                    continue  # read already, from its own fact or through another chain
                seen.add(child.mem_id)
            if tag in ("td", "th"):
                yield " "
            stack.append(child.iter(include_text=True))


def tagged_item1c_text(tree) -> tuple[str, bool]:
    """The text of every ``cyd:*TextBlock`` fact with its continuations, and whether it was cut.

    Block elements must already end with a line break (the cleaner inserts them), so the text
    comes in lines. Linear in the size of the tagged text: every fact, continuation and
    ``continuedAt`` link is read once, so a cycle of links ends too.
    """
    facts = [node for node in tree.css('ix\\:nonnumeric[name^="cyd:" i]') if _is_cyd_text_block(node)]
    if not facts:
        return "", False
    continuations = {}
    for node in tree.css("ix\\:continuation"):
        continuations.setdefault(node.attributes.get("id") or "", node)
    seen: set[int] = set()
    followed: set[str] = set()  # a link followed once has had the rest of its chain read too
    parts: list[str] = []
    size = 0
    for fact in facts:
        node = fact
        while node is not None:
            if node.mem_id not in seen:
                seen.add(node.mem_id)
                for piece in _pieces(node, seen):
                    parts.append(piece)
                    size += len(piece)
                    if size > MAX_TAGGED_CHARS:
                        return "".join(parts), True
                parts.append("\n")
            link = node.attributes.get("continuedat") or ""
            if not link or link in followed:
                break
            followed.add(link)
            node = continuations.get(link)
    return "".join(parts), False
