"""The ``zerograd`` command (also ``python -m zerograd``).

Subcommands:
    run SCRIPT [ARGS...]  run a Python script with ``dezero`` aliased to zerograd, so the
                          book's code runs unchanged (see :mod:`zerograd.compat`)
    train [OPTIONS]       train the demo MLP on the bundled MNIST digits (``train -h``)

Example:
    >>> main(["--version"])  # doctest: +ELLIPSIS
    zerograd ...
    0
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback

USAGE = """\
usage: zerograd <command> [args...]      (or: python -m zerograd <command> ...)

commands:
  run SCRIPT [ARGS...]   run a script written for the book's DeZero: `import dezero`
                         resolves to zerograd (ARGS become the script's sys.argv[1:])
  train [OPTIONS]        train the demo MLP on the bundled MNIST digits, offline
                         (see `zerograd train --help`)

options:
  -h, --help             show this message
  --version              print zerograd's version
"""


def main(argv: list[str] | None = None) -> int:
    """Run the ``zerograd`` command line; returns the exit status.

    Args:
        argv: the arguments after the program name (``sys.argv[1:]`` when None).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        sys.stderr.write(USAGE)
        return 2
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if command == "--version":
        from zerograd import __version__

        print(f"zerograd {__version__}")
        return 0
    if command == "run":
        return _run(rest)
    if command == "train":
        from zerograd import demo  # only this subcommand needs the demo's imports

        status = demo.main(rest)
        return 0 if status is None else status
    sys.stderr.write(f"zerograd: unknown command {command!r}\n\n{USAGE}")
    return 2


def _not_runnable(script: str) -> str | None:
    """Why ``script`` cannot be run (as ``python script`` could not), or None."""
    if os.path.isdir(script):
        if os.path.isfile(os.path.join(script, "__main__.py")):
            return None  # a folder with a __main__.py runs, as with `python folder`
        scripts = sorted(n for n in os.listdir(script) if n.endswith(".py"))
        hint = (
            f"; give one of its scripts, e.g. `zerograd run {os.path.join(script, scripts[0])}`"
            if scripts else "; give the path of a Python script"
        )
        return f"{script!r} is a folder without a __main__.py, not a script{hint}"
    if not os.path.exists(script):
        return f"no such file: {script!r}"
    if not os.path.isfile(script):
        return f"{script!r} is not a regular file; give the path of a Python script"
    return None


def _run(args: list[str]) -> int:
    """``run SCRIPT [ARGS...]``: execute SCRIPT as ``__main__`` with the alias installed
    (and so in book mode, see :mod:`zerograd.random`)."""
    if not args or args[0] in ("-h", "--help"):
        stream = sys.stdout if args else sys.stderr
        stream.write("usage: zerograd run SCRIPT [ARGS...]\n")
        return 0 if args else 2
    script = args[0]
    problem = _not_runnable(script)
    if problem:
        sys.stderr.write(f"zerograd run: {problem}\n")
        return 2
    from zerograd import compat

    was_installed = compat.is_installed()
    compat.install()
    # As `python script.py` would: the script's own argv, and its folder first on the
    # path (so that it can import the modules next to it).
    saved_argv = sys.argv
    folder = os.path.abspath(script) if os.path.isdir(script) else os.path.dirname(
        os.path.abspath(script))
    sys.argv = [script, *args[1:]]
    sys.path.insert(0, folder)
    try:
        runpy.run_path(script, run_name="__main__")
    except Exception as e:  # as `python script.py`: the traceback from the script on
        _print_script_traceback(e, script)
        return 1
    finally:
        sys.argv = saved_argv
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
        if not was_installed:
            compat.uninstall()
    return 0


def _print_script_traceback(error: BaseException, script: str) -> None:
    """Print ``error``'s traceback without the frames of this command (runpy, _run)."""
    tb = error.__traceback__
    start = os.path.abspath(script)
    while tb is not None and not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(
            start):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb or error.__traceback__)


if __name__ == "__main__":
    sys.exit(main())
