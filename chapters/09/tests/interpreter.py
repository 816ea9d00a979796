"""Run Triton kernels on a CPU, through Triton's interpreter, from any test.

Triton decides whether it interprets when it is imported (TRITON_INTERPRET=1 must be set
before `import triton`), and in a test run something else (transformers) has imported it long
before a chapter-9 test starts. So a check that runs a kernel goes to a child process started
with the variable set, one for the whole run, and its result (or its AssertionError, or the
NotImplementedError of an untouched stub) comes back and is raised here. A process that is
already interpreting (a notebook that set the variable first) runs the check itself.

    interpreted(check, fn)   check(fn) under the interpreter; fn is a kernel's Python function
"""

import concurrent.futures
import functools
import importlib
import multiprocessing
import os
import sys


def interpreting() -> bool:
    """True when this process imported Triton with the interpreter on."""
    if "triton" not in sys.modules:
        return os.environ.get("TRITON_INTERPRET") == "1"
    from triton import knobs
    from triton.runtime.interpreter import InterpretedFunction
    import triton.language as tl
    return knobs.runtime.interpret and isinstance(tl.sum, InterpretedFunction)


def patch_interpreter() -> None:
    """Triton 3.6's interpreter turns a loop bound it holds as an array into an int with
    int(array), which numpy >= 2.4 refuses for arrays of one element; .item() works everywhere."""
    from triton.runtime import interpreter

    patch = interpreter._patch_lang_tensor
    if getattr(patch, "patched_for_numpy", False):
        return

    def patch_lang_tensor(tensor, scope):
        patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.item()))

    patch_lang_tensor.patched_for_numpy = True
    interpreter._patch_lang_tensor = patch_lang_tensor


def address(fn) -> tuple[str, str]:
    """Where the child finds fn again: its module and name (a kernel's Python function is found
    as the @triton.jit object of that name, whose .fn it is)."""
    return fn.__module__, fn.__qualname__


def resolve(module: str, name: str):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)  # a @triton.jit kernel -> its Python function


def _unwrap(error: BaseException) -> BaseException:
    """The error a learner should see: the interpreter wraps what a kernel raised in an
    InterpreterError; the original is its cause."""
    while type(error).__name__ == "InterpreterError" and error.__cause__ is not None:
        error = error.__cause__
    return error


def _run_in_child(check: tuple[str, str], fn: tuple[str, str]) -> BaseException | None:
    patch_interpreter()
    try:
        resolve(*check)(resolve(*fn))
    except Exception as error:  # noqa: BLE001 - sent back to the parent, which raises it
        error = _unwrap(error)
        if isinstance(error, (AssertionError, NotImplementedError)):
            return type(error)(str(error))
        return RuntimeError(f"{type(error).__name__}: {error}")
    return None


def _start_child() -> None:
    os.environ["TRITON_INTERPRET"] = "1"


@functools.cache
def _child() -> concurrent.futures.ProcessPoolExecutor:
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_child)


def interpreted(check, fn) -> None:
    """check(fn) with Triton's interpreter on; raises what check raised."""
    if interpreting():
        patch_interpreter()
        check(fn)
        return
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"  # the spawned child reads it before importing anything
    try:
        error = _child().submit(_run_in_child, address(check), address(fn)).result()
    finally:
        if previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = previous
    if error is not None:
        raise error
