"""Emit YAML meant to be read by people as well as programs.

Shared by the KB writer and the compiler so both produce the same style: UTF-8 characters
as-is, no line folding, keys in the order given, multi-line text as ``|`` blocks, indented
lists as in the documentation, and never an anchor or alias (``&id001``), which would puzzle
anyone editing the file.
"""

from __future__ import annotations

from typing import Any

import yaml


class Block(str):
    """Text to write as a ``|`` block even when it is a single line (answers, examples)."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_block(dumper: yaml.SafeDumper, value: Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(Block, _represent_block)
_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML text for ``data``; PyYAML falls back to a quoted string when a block cannot hold it."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=1_000_000,
    )
