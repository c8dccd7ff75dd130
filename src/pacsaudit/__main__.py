"""`python -m pacsaudit` and the `pacsaudit` command."""

import atexit
import contextlib
import gc
import os
import sys


def main() -> None:
    """Run the CLI, its imports made with the cyclic garbage collector paused.

    Importing pydantic, Typer and the models allocates hundreds of thousands of objects that
    live as long as the process: the collector would walk them about ninety times, for
    almost no garbage. It is back on before any command runs.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        from pacsaudit.cli import main as cli
    finally:
        if collecting:
            gc.enable()
    if sys.argv[1:2] != ["scan"]:
        cli()
        return
    try:
        cli()
    except SystemExit as exc:
        _leave(exc.code)
    _leave(0)


def _leave(code: object) -> None:
    """End a scan's process without tearing the interpreter down.

    By the time `scan` returns it has closed what it opened (the JSON Lines file, the scan
    store, the ASN database) and its workers have exited; freeing every module and object one
    by one would only add a few tens of milliseconds to each scan. The exit handlers run and
    the standard streams are flushed, in that order, as at a normal exit.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # SystemExit("message"): printed, exit status 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) or stream
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
