"""The `policy-monitor` command line: the parser in `main`, one module per command family."""

from monitor.cli.main import console_main, main

__all__ = ["console_main", "main"]
