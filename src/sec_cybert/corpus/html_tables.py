"""Where a filing's tables sit in the parsed tree, found in time linear in the size of the tree.

The cleaner reads each outermost table on its own and, inside a cell, walks node by node only
the elements that have a table inside them (all other text is taken at once). Asking each
element for a table below it, or each table for a table above it, costs the depth of the tree
every time: the square of the depth for a long chain of nested elements. Here every element is
visited at most once, however the tables nest.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class TableIndex:
    """The outermost tables in document order, and the elements that hold a table (by ``mem_id``)."""

    outermost: list
    holders: frozenset[int]


def index_tables(tables: Sequence) -> TableIndex:
    """Index ``tables``, every table of one tree in document order (as ``tree.css("table")`` gives).

    From each table the walk goes up only to the first element an earlier walk has marked: its
    ancestors are marked already, and whether a table lies above it is known.
    """
    holders: set[int] = set()
    table_above: dict[int, bool] = {}  # for each marked element: is it, or an ancestor, a table?
    outermost = []
    for table in tables:
        path = []
        node = table.parent
        while node is not None and node.mem_id not in holders:
            path.append(node)
            node = node.parent
        inside = table_above.get(node.mem_id, False) if node is not None else False
        for ancestor in reversed(path):  # from the top down
            inside = inside or ancestor.tag == "table"
            holders.add(ancestor.mem_id)
            table_above[ancestor.mem_id] = inside
        if not inside:
            outermost.append(table)
    return TableIndex(outermost, frozenset(holders))
