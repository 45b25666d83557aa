"""zerograd.compat (the `dezero` alias) and the `zerograd` command (zerograd.__main__)."""

import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import types

import pytest

import zerograd
from zerograd import compat
from zerograd.__main__ import main


@pytest.fixture
def alias():
    """The alias installed for one test, and nothing of it left afterwards."""
    assert not compat.is_installed()
    compat.install()
    try:
        yield
    finally:
        compat.uninstall()
    assert not any(n == "dezero" or n.startswith("dezero.") for n in sys.modules)


def _run(args, **kwargs):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, **kwargs
    )


# ---- the alias ------------------------------------------------------------------------
def test_import_dezero_gives_zerograd(alias):
    import dezero
    import dezero.functions as F
    from dezero import Variable

    assert dezero is zerograd
    assert F is zerograd.functions
    assert Variable is zerograd.Variable


@pytest.mark.parametrize("name", compat.DEZERO_MODULES)
def test_every_dezero_module_name(alias, name):
    target = compat.ALIASES.get(f"dezero.{name}", f"zerograd.{name}")
    if importlib.util.find_spec(target) is None:
        # Not written yet: the alias says so the usual way.
        with pytest.raises(ModuleNotFoundError, match=f"dezero.{name}"):
            importlib.import_module(f"dezero.{name}")
        return
    assert importlib.import_module(f"dezero.{name}") is importlib.import_module(target)


def test_renamed_modules(alias):
    import dezero.core_simple
    import dezero.functions_conv

    assert dezero.core_simple is zerograd.core
    assert dezero.functions_conv is zerograd.functions


def test_import_as_and_from_forms(alias):
    namespace = {}
    exec(
        textwrap.dedent(
            """
            import dezero.functions as F
            import dezero.utils as U
            from dezero import cuda
            from dezero.core import Function, Variable
            from dezero.functions import square
            """
        ),
        namespace,
    )
    assert namespace["F"] is zerograd.functions
    assert namespace["U"] is zerograd.utils
    assert namespace["cuda"] is zerograd.cuda
    assert namespace["Variable"] is zerograd.Variable
    assert namespace["square"] is zerograd.functions.square


def test_modules_are_not_loaded_twice(alias):
    import dezero.core

    # Same module object, same classes: isinstance works across the two names.
    assert dezero.core.Variable is zerograd.core.Variable
    assert zerograd.core.__spec__.name == "zerograd.core"
    assert zerograd.__spec__.name == "zerograd"
    assert zerograd.core.__name__ == "zerograd.core"


def test_unknown_dezero_module(alias):
    with pytest.raises(ModuleNotFoundError) as info:
        import dezero.no_such_module  # noqa: F401
    assert info.value.name == "dezero.no_such_module"


def test_a_module_added_after_install_resolves(alias, tmp_path, monkeypatch):
    (tmp_path / "late_module_h6.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(zerograd, "__path__", [*zerograd.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "zerograd.late_module_h6", raising=False)
    import dezero.late_module_h6 as late

    assert late.VALUE == 42
    assert late is sys.modules["zerograd.late_module_h6"]
    monkeypatch.delitem(sys.modules, "zerograd.late_module_h6")


def test_install_is_idempotent_and_uninstall_cleans_up():
    compat.install()
    compat.install()
    try:
        assert sys.meta_path.count(compat._finder) == 1
        assert sys.meta_path[0] is compat._finder
        import dezero.core_simple  # noqa: F401
    finally:
        compat.uninstall()
    assert not compat.is_installed()
    assert "dezero" not in sys.modules and "dezero.core_simple" not in sys.modules
    assert not hasattr(zerograd, "core_simple")  # the import system's side effect, undone
    assert hasattr(zerograd, "core")
    with pytest.raises(ModuleNotFoundError):
        import dezero  # noqa: F401
    compat.uninstall()  # twice is fine


def test_install_imports_nothing():
    out = _run(
        [
            "-c",
            "import sys, zerograd.compat as c; before = set(sys.modules); c.install(); "
            "print(sorted(set(sys.modules) - before))",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_alias_wins_over_an_installed_original(tmp_path, monkeypatch, alias):
    original = tmp_path / "dezero"
    original.mkdir()
    (original / "__init__.py").write_text("raise ImportError('the original DeZero')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import dezero

    assert dezero is zerograd


def test_install_refuses_when_the_original_is_imported(monkeypatch):
    fake = types.ModuleType("dezero")
    fake.__file__ = "/somewhere/dezero/__init__.py"
    monkeypatch.setitem(sys.modules, "dezero", fake)
    with pytest.raises(RuntimeError, match=r"original 'dezero'.*python -m zerograd run"):
        compat.install()
    assert not compat.is_installed()


# ---- python -m zerograd ---------------------------------------------------------------
def _script(tmp_path, body, name="script.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_run_passes_argv_and_the_script_folder(tmp_path, capsys):
    _script(tmp_path, "GREETING = 'hello from a sibling module'\n", name="helper_h6.py")
    script = _script(
        tmp_path,
        """
        import sys
        import dezero
        from helper_h6 import GREETING
        print(__name__, sys.argv[1:], dezero.__name__, GREETING)
        """,
    )
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    try:
        assert main(["run", str(script), "--lr", "0.1", "x"]) == 0
    finally:
        sys.modules.pop("helper_h6", None)
    out = capsys.readouterr().out
    assert out == "__main__ ['--lr', '0.1', 'x'] zerograd hello from a sibling module\n"
    assert sys.argv == saved_argv and sys.path == saved_path
    assert not compat.is_installed()  # main() put things back as it found them


def test_run_through_python_m(tmp_path):
    script = _script(
        tmp_path,
        """
        import sys
        import numpy as np
        from dezero import Variable
        import dezero.functions as F
        x = Variable(np.array(0.5))
        y = F.square(F.exp(F.square(x)))
        y.backward()
        print(x.grad, sys.argv)
        """,
    )
    out = _run(["-m", "zerograd", "run", str(script), "a b"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"variable(3.297442541400256) [{str(script)!r}, 'a b']\n"


def test_run_propagates_the_script_exit_status(tmp_path):
    script = _script(tmp_path, "import sys\nsys.exit(3)\n")
    assert _run(["-m", "zerograd", "run", str(script)]).returncode == 3
    script = _script(tmp_path, "raise ValueError('from the script')\n")
    out = _run(["-m", "zerograd", "run", str(script)])
    assert out.returncode == 1 and "ValueError: from the script" in out.stderr


def test_run_errors(tmp_path, capsys):
    assert main(["run"]) == 2
    assert "usage: zerograd run SCRIPT" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["run", "--help"]) == 0
    assert "usage" in capsys.readouterr().out


def test_usage(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: zerograd" in err and "run SCRIPT" in err and "train" in err
    assert main(["bogus"]) == 2
    assert "unknown command 'bogus'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "usage: zerograd" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"zerograd {zerograd.__version__}\n"


def test_train_is_dispatched_to_the_demo(monkeypatch):
    calls = []
    fake = types.ModuleType("zerograd.demo")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "zerograd.demo", fake)
    monkeypatch.setattr(zerograd, "demo", fake, raising=False)
    assert main(["train", "--epochs", "1"]) == 0
    assert calls == [["--epochs", "1"]]
    fake.main = lambda argv: 5
    assert main(["train"]) == 5


def test_python_m_zerograd_without_arguments():
    out = _run(["-m", "zerograd"], env={**os.environ, "ZEROGRAD_CPU_ONLY": "1"})
    assert out.returncode == 2
    assert "usage: zerograd" in out.stderr
