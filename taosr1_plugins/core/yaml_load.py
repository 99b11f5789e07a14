"""YAML from a user's file or command line, refused when its aliases make it circular or explode.

PyYAML shares one object per anchor, so a 4 KB file of nested aliases (a "billion laughs") loads in
milliseconds; the cost comes later, when pydantic validates or the run digests the 10⁶ leaves it stands
for (a minute and more), and a self-referencing anchor (``a: &a [*a]``) makes a recursive object that
fails deep inside validation with a traceback. So the document's node graph is measured before it is
constructed: its size with every alias expanded, memoised per node, so a bomb is refused in the time it
takes to read the file.
"""

from __future__ import annotations

import yaml

# values (scalars, lists, mappings) after expanding aliases; the largest shipped recipe has a few hundred
MAX_VALUES = 100_000


class YamlLimitError(yaml.YAMLError):
    """A document whose aliases are circular, or expand past :data:`MAX_VALUES`; an ``yaml.YAMLError``, so
    every reader that reports a broken YAML file reports this one too."""


def safe_load(text: str, max_values: int = MAX_VALUES):
    """``yaml.safe_load(text)``, or :class:`YamlLimitError` (naming the line) before anything is constructed."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # PyYAML's composer recurses once per level of nesting
            raise YamlLimitError("nested too deeply") from None
        if node is None:
            return None
        _check_expansion(node, max_values)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, limit: int) -> None:
    """Depth-first without recursion (a deep document must not hit Python's recursion limit here): a node met
    again while still open is a cycle; a closed one counts its memoised size."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > limit:
                raise YamlLimitError(f"line {node.start_mark.line + 1}: this value expands to over {limit:,} values "
                                     "through its aliases (*name); write the values out, or fewer of them")
            sizes[key] = size
            continue
        if key in sizes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise YamlLimitError(f"line {child.start_mark.line + 1}: a circular anchor: the value anchored here "
                                     "contains an alias (*name) to itself")
            if id(child) not in sizes:
                stack.append((child, False))
