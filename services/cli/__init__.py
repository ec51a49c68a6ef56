"""The ``workmesh`` command: one module per group of subcommands.

:func:`main` is the console script's entry point; :func:`build_parser` is also read by
``deploy/check_compose.py``.
"""

from workmesh.services.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
