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
def test_import_dezero_gives_zerograds_objects(alias):
    import dezero
    import dezero.functions as F
    from dezero import Variable

    assert dezero.__name__ == "dezero" and isinstance(dezero, compat.BookModule)
    assert F is sys.modules["dezero.functions"] and F.relu is zerograd.functions.relu
    assert Variable is zerograd.Variable
    assert dezero.functions is F  # a submodule of the alias is the alias's module


@pytest.mark.parametrize("name", compat.DEZERO_MODULES)
def test_every_dezero_module_name(alias, name):
    module = importlib.import_module(f"dezero.{name}")
    target = importlib.import_module(compat.ALIASES.get(f"dezero.{name}", f"zerograd.{name}"))
    assert module.__name__ == f"dezero.{name}"
    for attr in [n for n in dir(target) if not n.startswith("_")][:50]:
        if attr not in compat.BOOK_NAMES.get(f"dezero.{name}", {}):
            value = getattr(target, attr)
            if not isinstance(value, types.ModuleType):
                assert getattr(module, attr) is value


def test_renamed_modules(alias):
    import dezero.core_simple
    import dezero.functions_conv

    assert dezero.functions_conv.conv2d is zerograd.functions.conv2d
    assert dezero.core_simple.Function is zerograd.core.Function
    assert dezero.core_simple.Variable is compat.SimpleVariable


def test_import_as_and_from_forms(alias):
    namespace = {}
    exec(
        textwrap.dedent(
            """
            import dezero.functions as F
            import dezero.utils as U
            from dezero import cuda
            from dezero.core import Function, Variable, Config
            from dezero.functions import square
            from dezero.functions import *
            """
        ),
        namespace,
    )
    assert namespace["F"].__name__ == "dezero.functions"
    assert namespace["U"].plot_dot_graph is zerograd.utils.plot_dot_graph
    assert namespace["cuda"].get_array_module is zerograd.cuda.get_array_module
    assert namespace["Variable"] is zerograd.Variable
    assert namespace["Config"] is zerograd.Config
    assert namespace["square"] is zerograd.functions.square
    assert namespace["relu"] is zerograd.functions.relu  # the star import


def test_the_alias_follows_zerograd(alias, monkeypatch):
    # Names are looked up at each access: what zerograd has now is what dezero gives.
    import dezero.functions as F

    monkeypatch.setattr(zerograd.functions, "relu", "patched", raising=True)
    assert F.relu == "patched"
    monkeypatch.setattr(zerograd.functions, "brand_new_h9", 1, raising=False)
    assert F.brand_new_h9 == 1 and "brand_new_h9" in dir(F)


def test_missing_names_say_where_they_were_looked_for(alias):
    import dezero.layers

    with pytest.raises(AttributeError, match=r"'dezero.layers' \(zerograd's 'zerograd.layers'\)"):
        dezero.layers.NoSuchLayer  # noqa: B018
    assert "zerograd.layers" in repr(dezero.layers)


def test_modules_are_not_loaded_twice(alias):
    import dezero.core

    # The same classes: isinstance works across the two names.
    assert dezero.core.Variable is zerograd.core.Variable
    assert zerograd.core.__spec__.name == "zerograd.core"
    assert zerograd.__spec__.name == "zerograd"
    assert zerograd.core.__name__ == "zerograd.core"
    # No second copy of a zerograd file was loaded under a dezero name.
    assert all(isinstance(m, compat.BookModule) for n, m in sys.modules.items()
               if n == "dezero" or n.startswith("dezero."))


def test_unknown_dezero_module(alias):
    with pytest.raises(ModuleNotFoundError) as info:
        import dezero.no_such_module  # noqa: F401
    assert info.value.name == "dezero.no_such_module"


def test_a_module_added_after_install_resolves(alias, tmp_path, monkeypatch):
    (tmp_path / "late_module_h6.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(zerograd, "__path__", [*zerograd.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "zerograd.late_module_h6", raising=False)
    import dezero.late_module_h6 as late

    assert late.VALUE == 42 and late.__name__ == "dezero.late_module_h6"
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
    assert not hasattr(zerograd, "core_simple")  # nothing is added to zerograd's modules
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

    assert isinstance(dezero, compat.BookModule) and dezero.Variable is zerograd.Variable


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
    assert out == "__main__ ['--lr', '0.1', 'x'] dezero hello from a sibling module\n"
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


def test_run_a_folder(tmp_path, capsys):
    (tmp_path / "steps").mkdir()
    _script(tmp_path / "steps", "print('one')\n", name="step01.py")
    assert main(["run", str(tmp_path / "steps")]) == 2
    err = capsys.readouterr().err
    assert "is a folder without a __main__.py, not a script" in err
    assert f"zerograd run {tmp_path / 'steps' / 'step01.py'}" in err
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty")]) == 2
    assert "give the path of a Python script" in capsys.readouterr().err
    # A folder with a __main__.py runs, as `python folder` runs it.
    _script(tmp_path / "steps", "import dezero\nprint('main of', dezero.__name__)\n",
            name="__main__.py")
    assert main(["run", str(tmp_path / "steps")]) == 0
    assert capsys.readouterr().out == "main of dezero\n"


def test_run_shows_the_scripts_traceback_only(tmp_path, capsys):
    script = _script(tmp_path, "def f():\n    raise KeyError('k')\n\nf()\n")
    assert main(["run", str(script)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert f'File "{script}", line 4' in err and "KeyError: 'k'" in err
    assert "runpy" not in err and "__main__.py" not in err
    assert not compat.is_installed()


# ---- book mode ------------------------------------------------------------------------
def test_install_switches_book_mode_on_and_uninstall_off():
    import zerograd.random

    assert not zerograd.random.book_mode()
    compat.install()
    try:
        assert zerograd.random.book_mode()
    finally:
        compat.uninstall()
    assert not zerograd.random.book_mode()


def test_run_is_in_book_mode(tmp_path, capsys):
    script = _script(
        tmp_path,
        """
        import numpy as np
        import dezero.layers as L
        np.random.seed(0)
        W = L.Linear(3, in_size=2).W.data
        np.random.seed(0)
        expected = np.random.randn(2, 3).astype(np.float32) * np.float32(np.sqrt(1 / 2))
        print(W.dtype, bool((W == expected).all()))
        """,
    )
    assert main(["run", str(script)]) == 0
    assert capsys.readouterr().out == "float32 True\n"


# ---- the book's names that zerograd has no use for ---------------------------------------
def test_is_simple_core_and_setup_variable(alias):
    import dezero

    assert dezero.is_simple_core is False  # the book's repository runs the full core
    assert dezero.setup_variable() is None and dezero.core.setup_variable is compat.setup_variable


def test_core_simple_variable_keeps_array_gradients(alias):
    import numpy as np
    from dezero.core_simple import Variable

    x = Variable(np.array(2.0))
    y = x ** 3 + 2 * x
    y.backward()
    # An array, not a Variable (a NumPy scalar too, today, where the engine adds up
    # the gradients of a 0-d input)
    assert not isinstance(x.grad, zerograd.Variable) and np.ndim(x.grad) == 0
    assert x.grad == 14.0  # 3 x^2 + 2
    y = x ** 3 + 2 * x
    y.backward()  # not cleared: gradients add up, as in the book
    assert not isinstance(x.grad, zerograd.Variable) and x.grad == 28.0
    x.cleargrad()
    assert x.grad is None
    x.data -= 0.5 * np.array(2.0)  # the book's update, step 28
    assert x.data == 1.0 and repr(x) == "variable(1.0)"
    assert isinstance(x, zerograd.Variable)


def test_core_array_types(alias):
    import dezero.core
    import numpy as np

    assert dezero.core.array_types[0] is np.ndarray
    if not zerograd.cuda.gpu_enable:
        assert dezero.core.array_types == (np.ndarray,)
        with pytest.raises(AttributeError, match="cupy"):
            dezero.cuda.cupy  # noqa: B018


def test_cache_dir_is_the_folder_downloads_go_to(alias, monkeypatch, tmp_path):
    import dezero.datasets
    import dezero.utils

    monkeypatch.setenv("ZEROGRAD_HOME", str(tmp_path))
    assert dezero.utils.cache_dir == str(tmp_path) == dezero.datasets.cache_dir
    assert callable(zerograd.utils.cache_dir)  # zerograd's own stays a function


def test_cache_npz_round_trip(alias, monkeypatch, tmp_path, capsys):
    import dezero.datasets
    import numpy as np

    monkeypatch.setenv("ZEROGRAD_HOME", str(tmp_path / "cache"))
    url = "https://example.org/data/cifar-10-python.tar.gz"
    assert dezero.datasets.load_cache_npz(url, train=True) == (None, None)
    data, label = np.arange(6.0).reshape(2, 3), np.array([1, 0])
    path = dezero.datasets.save_cache_npz(data, label, url, train=True)
    assert path == str(tmp_path / "cache" / "cifar-10-python.tar.gz.train.npz")
    assert capsys.readouterr().out == "Saving: cifar-10-python.tar.gz.train.npz\n Done\n"
    assert dezero.datasets.save_cache_npz(data * 0, label, url, train=True) is None
    loaded = dezero.datasets.load_cache_npz(url, train=True)
    np.testing.assert_array_equal(loaded[0], data)  # the first file stays
    np.testing.assert_array_equal(loaded[1], label)
    assert dezero.datasets.load_cache_npz(url, train=False) == (None, None)


def test_pil_available(alias):
    import dezero.dataloaders

    assert dezero.dataloaders.pil_available is (importlib.util.find_spec("PIL") is not None)


@pytest.mark.parametrize(
    ("x_shape", "axis", "keepdims", "gy_shape", "expected"),
    [
        ((2, 3), 0, False, (3,), (1, 3)),
        ((2, 3), 1, False, (2,), (2, 1)),
        ((2, 3, 4), (0, 2), False, (3,), (1, 3, 1)),
        ((2, 3, 4), -1, False, (2, 3), (2, 3, 1)),
        ((2, 3), None, False, (), ()),  # a scalar already broadcasts: unchanged
        ((2, 3), 0, True, (1, 3), (1, 3)),
        ((), None, False, (), ()),
    ],
)
def test_reshape_sum_backward(alias, x_shape, axis, keepdims, gy_shape, expected):
    import dezero.utils
    import numpy as np

    gy = zerograd.Variable(np.ones(gy_shape))
    out = dezero.utils.reshape_sum_backward(gy, x_shape, axis, keepdims)
    assert isinstance(out, zerograd.Variable) and out.shape == expected
    assert (np.ones(x_shape) * out.data).shape == x_shape


def test_max_backward_shape(alias):
    import dezero.utils
    import numpy as np

    x = np.ones((2, 3, 4))
    assert dezero.utils.max_backward_shape(x, None) == [1, 1, 1]
    assert dezero.utils.max_backward_shape(x, 1) == [2, 1, 4]
    assert dezero.utils.max_backward_shape(x, (0, 2)) == [1, 3, 1]
    assert dezero.utils.max_backward_shape(x, -1) == [2, 3, 1]


def test_show_progress(alias, capsys):
    import dezero.utils

    dezero.utils.show_progress(0, 1024, 4096)
    dezero.utils.show_progress(2, 1024, 4096)
    dezero.utils.show_progress(9, 1024, 4096)  # past the end: 100%
    dezero.utils.show_progress(3, 10, -1)  # the size is unknown
    assert capsys.readouterr().out == (
        "\r[" + "." * 30 + "] 0.00%"
        "\r[" + "#" * 15 + "." * 15 + "] 50.00%"
        "\r[" + "#" * 30 + "] 100.00%"
        "\r30 bytes"
    )


def test_im2col_array_and_col2im_array(alias):
    import dezero.functions_conv as C
    import numpy as np

    img = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5)
    col = C.im2col_array(img, 3, 1, 1)
    assert isinstance(col, np.ndarray) and col.shape == (2 * 5 * 5, 3 * 3 * 3)
    np.testing.assert_array_equal(col, zerograd.functions.im2col(img, 3, 1, 1).data)
    col6 = C.im2col_array(img, 3, 2, 0, to_matrix=False)
    assert col6.shape == (2, 3, 3, 3, 2, 2)
    back = C.col2im_array(col, img.shape, 3, 1, 1)
    # Each pixel comes back once for every window that covers it.
    counts = C.col2im_array(np.ones_like(col), img.shape, 3, 1, 1)
    np.testing.assert_allclose(back, img * counts)
