"""The `policy-monitor` command line: the parser in `main`, one module per command family."""

from monitor.cli.main import main

__all__ = ["main"]
