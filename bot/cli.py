"""The project's command line: ``python -m bot <group> <command>``.

Each feature module contributes its own commands through ``add_commands(subparsers)``
so this file stays a table of contents.
"""

from __future__ import annotations

import argparse
import importlib

# Modules that expose add_commands(subparsers) -> None; each command sets `func`.
_COMMAND_MODULES = [
    "bot.kb.commands",
    "bot.store.commands",
    "bot.run_commands",
    "bot.model_commands",
    "bot.console.commands",
    "bot.privacy.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Citizen relationship assistant",
                                     epilog="Evaluation, tuning and benchmarks: python -m tools --help")
    sub = parser.add_subparsers(dest="group", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
