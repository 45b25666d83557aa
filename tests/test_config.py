"""zerograd.config: the switches, their context managers, and their thread safety."""

import asyncio
import threading

import numpy as np
import pytest

from zerograd import Config, Variable, no_grad, test_mode, using_config
from zerograd.functions import square


def test_defaults():
    assert Config.enable_backprop is True
    assert Config.train is True


def test_using_config_sets_and_restores():
    with using_config("enable_backprop", False):
        assert Config.enable_backprop is False
        with using_config("enable_backprop", True):
            assert Config.enable_backprop is True
        assert Config.enable_backprop is False
    assert Config.enable_backprop is True


def test_using_config_restores_after_an_exception():
    with pytest.raises(RuntimeError):
        with using_config("train", False):
            raise RuntimeError("boom")
    assert Config.train is True


def test_using_config_as_a_decorator():
    @using_config("train", False)
    def f():
        return Config.train

    assert f() is False
    assert f() is False  # reusable
    assert Config.train is True


def test_unknown_switch_names_the_known_ones():
    with pytest.raises(AttributeError, match=r"enable_backprop.*train"):
        using_config("enable_backprob", False)
    with pytest.raises(AttributeError, match="no switch 'nope'"):
        Config.nope


def test_setting_config_directly_stays_in_the_thread():
    result = {}

    def worker():
        Config.train = False
        result["worker"] = Config.train

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert result["worker"] is False
    assert Config.train is True


def test_no_grad_context():
    x = Variable(np.array(3.0))
    with no_grad():
        assert Config.enable_backprop is False
        y = square(x)
    assert Config.enable_backprop is True
    assert y.creator is None and float(y.data) == 9.0


def test_no_grad_decorator_without_and_with_parentheses():
    @no_grad
    def bare():
        return Config.enable_backprop

    @no_grad()
    def called():
        return Config.enable_backprop

    assert bare() is False
    assert called() is False
    assert bare.__name__ == "bare"  # functools.wraps
    assert Config.enable_backprop is True


def test_no_grad_rejects_a_non_callable():
    with pytest.raises(TypeError, match="no_grad"):
        no_grad(3)


def test_test_mode():
    assert Config.train is True
    with test_mode():
        assert Config.train is False
        assert Config.enable_backprop is True  # test mode is not no_grad
    assert Config.train is True


def test_switches_are_per_thread():
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    def a():
        with no_grad(), test_mode():
            barrier.wait()
            seen["a"] = (Config.enable_backprop, Config.train)
            barrier.wait()

    def b():
        barrier.wait()
        seen["b"] = (Config.enable_backprop, Config.train)
        barrier.wait()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": (False, False), "b": (True, True)}


def test_switches_are_per_asyncio_task():
    async def inside():
        with no_grad():
            await asyncio.sleep(0.01)
            return Config.enable_backprop

    async def outside():
        await asyncio.sleep(0.005)  # runs while `inside` holds no_grad
        return Config.enable_backprop

    async def main():
        return await asyncio.gather(inside(), outside())

    assert asyncio.run(main()) == [False, True]


@pytest.mark.parametrize("make", [lambda: no_grad(), lambda: test_mode(),
                                  lambda: using_config("enable_backprop", False)])
def test_a_decorator_is_safe_across_threads(make):
    # One decorator instance, entered by two threads whose calls overlap: each must
    # restore its own value (the instance once kept one shared stack of tokens).
    barrier = threading.Barrier(2, timeout=10)
    errors = []

    @make()
    def work(first):
        barrier.wait()
        if first:  # leave while the other thread is still inside
            return
        barrier.wait()

    def run(first):
        try:
            work(first)
            if not first:
                return
            barrier.wait()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(flag,)) for flag in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors and not any(t.is_alive() for t in threads)
    assert Config.enable_backprop and Config.train


def test_a_shared_context_manager_is_safe_across_threads():
    # Thread A enters, then B; A leaves while B is still inside, then B leaves.
    cm = no_grad()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen, errors = {}, []

    def a():
        try:
            with cm:
                a_in.set()
                b_in.wait(10)
            seen["a after"] = Config.enable_backprop
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        a_out.set()

    def b():
        try:
            a_in.wait(10)
            with cm:
                b_in.set()
                a_out.wait(10)
                seen["b inside"] = Config.enable_backprop
            seen["b after"] = Config.enable_backprop
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert seen == {"a after": True, "b inside": False, "b after": True}
