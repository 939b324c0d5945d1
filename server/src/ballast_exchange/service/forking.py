"""Forked children that read the engine as it stood at the fork, copy-on-write.

``fork_encoder`` forks a child that encodes the state (``domain.snapshot_codec``) and sends the
bytes back through a pipe; ``fork_digest`` one that sends only the state's digest. The caller
pauses for the fork alone (copying the page tables) and collects the answer with ``wait_child``
(in a worker thread: it blocks). The child:

- closes every inherited descriptor (a listening socket, the store's lock file, database
  connections) so that a parent killed meanwhile frees its port and store at once, and asks the
  kernel to kill it if the parent dies (``PR_SET_PDEATHSIG``);
- never opens the database: SQLite's in-process state (its locks' bookkeeping) must not cross
  a fork;
- leaves with ``os._exit``, running no cleanup of the parent's.

At the fork every object the parent holds is frozen (``gc.freeze``) and stays so: the cycle
collector never walks them again. A full collection writes to every object's header, so while a
child runs it would copy every page of the heap (a pause of hundreds of milliseconds with a
million orders); and after, it would be the same long walk over the same long-lived state
(``freeze_recovered`` says more).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import resource
import select
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from time import perf_counter
from typing import Any, NoReturn, Protocol

from ..domain import snapshot_codec as codec

_PR_SET_PDEATHSIG = 1


class ChildFailed(Exception):
    """A forked child failed or ran too long (the reason is the message)."""


class Snapshottable(Protocol):
    """What a snapshot is of: the engine and the client order ids bound for good."""

    @property
    def engine(self) -> Any: ...
    @property
    def client_orders(self) -> dict[tuple[str, str], int]: ...


def fork_encoder(state: Snapshottable, command_no: int) -> tuple[int, int]:
    """Fork a child that encodes ``state`` as it is now and sends it back: ``(pid, fd)`` for
    ``wait_child``, which returns the report and the snapshot's bytes."""
    return _fork(lambda fd: _encode(state, command_no, fd))


def fork_digest(state: Snapshottable, version: int = codec.VERSION) -> tuple[int, int]:
    """Fork a child that sends back ``{"digest": ...}`` of ``state`` as it is now, in snapshot
    format ``version`` (a restored older snapshot is checked against its own form)."""

    def run(fd: int) -> None:
        digest = codec.state_digest(state.engine, state.client_orders, version)
        _send(fd, {"digest": digest})

    return _fork(run)


def freeze_recovered() -> None:
    """Move every object allocated so far out of the cycle collector's sight, for good.

    The engine's state is long-lived and, with a million resting orders, millions of objects:
    each full collection would walk all of them (seconds), during the journal replay at start
    and later on the order path. Frozen objects are still freed by reference counting, which is
    how the engine's objects go (an order leaving the book is unlinked from its level and
    position); what is pinned is only cyclic garbage not yet collected at a freeze.
    """
    gc.freeze()


@contextlib.contextmanager
def building_long_lived() -> Iterator[None]:
    """Build the state that lives as long as the process (the recovered engine, the stream's
    read models) with the cycle collector off, then freeze it all and hand the heap's free
    pages back to the system.

    Millions of objects are built here and none is garbage: each full collection would walk
    all those built so far (measured: half of the stream models' build at a million orders).
    What the imports and migrations left as cyclic garbage is collected first, so the freeze
    at the end pins only what this block leaves. The trim matters to every later snapshot:
    the fork copies the page tables of every page still held (``trim_heap``).
    """
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        freeze_recovered()
        trim_heap()
        if collecting:
            gc.enable()


def trim_heap() -> None:
    """Return the allocator's free pages to the system (glibc's ``malloc_trim``; elsewhere a
    no-op). A fork's pause grows with the pages the parent holds, free or not: after a
    recovery decoded a snapshot of a million orders, this took the fork from about 57 ms to
    30 ms. ctypes releases the GIL for the call, so a worker thread can run it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


_MADV_COLLAPSE = 25  # Linux 6.1+: make the range's pages huge pages now, synchronously
_HUGE_PAGE = 1 << 21
_COLLAPSE_SLICE = 16 * _HUGE_PAGE  # 32 MiB per madvise call


def ready_to_fork() -> None:
    """Shrink what the next fork copies, off the loop (a worker thread: the calls release the
    GIL): free pages handed back (``trim_heap``), then the heap's pages gathered into 2 MiB
    huge pages (``collapse_heap``)."""
    trim_heap()
    collapse_heap()


def collapse_heap() -> None:
    """Back the process's private anonymous memory (the Python heap) with 2 MiB huge pages
    where the kernel can (``madvise(MADV_COLLAPSE)``; a no-op before Linux 6.1 or without
    transparent huge pages).

    A fork copies one page-table entry per 4 KiB page, and takes a reference on each page:
    with huge pages it copies one per 2 MiB. Measured at a million resting orders (a 0.9 GB
    heap): the fork from about 50 ms to 10-17 ms. Copy-on-write splits the huge pages the
    parent writes while a child runs, so this runs again before every fork; it costs 1.5-3 s
    per GB in the calling thread the first time, less after. Only ``MADV_COLLAPSE``, never
    ``MADV_HUGEPAGE``: new allocations keep faulting in small pages, with no compaction
    stall on the order path.
    """
    try:
        madvise = ctypes.CDLL(None).madvise
        maps = Path("/proc/self/maps").read_text().splitlines()
    except (OSError, AttributeError):  # not Linux
        return
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    for line in maps:
        fields = line.split()
        if len(fields) < 5 or fields[1] != "rw-p":
            continue
        if len(fields) > 5 and fields[5] != "[heap]":
            continue  # a file's pages, a stack, the vdso: not the heap
        low, high = (int(x, 16) for x in fields[0].split("-"))
        start = -(-low // _HUGE_PAGE) * _HUGE_PAGE
        end = high // _HUGE_PAGE * _HUGE_PAGE
        # A slice at a time: the kernel holds the address space's lock while it collapses a
        # range, and the loop's page faults wait behind it (one call over the whole heap
        # stalled a command for up to 28 ms at a million orders).
        # A failure (no MADV_COLLAPSE before Linux 6.1, huge pages off, none free) leaves
        # small pages: the fork just copies more.
        for at in range(start, end, _COLLAPSE_SLICE):
            madvise(at, min(_COLLAPSE_SLICE, end - at), _MADV_COLLAPSE)


def _fork(run: Callable[[int], None]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    parent = os.getpid()
    gc.freeze()
    with warnings.catch_warnings():
        # 3.12+ warns of forking with threads; the child takes no lock they may hold: it
        # computes with what is imported and writes to a pipe.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(run, write_end, parent)
    os.close(write_end)
    return pid, read_end


def _child(run: Callable[[int], None], fd: int, parent: int) -> NoReturn:
    code = 1
    try:
        _detach(fd, parent)
        run(fd)
        code = 0
    except BaseException as error:  # everything goes back to the parent, as text
        with contextlib.suppress(BaseException):
            _send(fd, {"error": f"{type(error).__name__}: {error}"})
    os._exit(code)


def _detach(keep: int, parent: int) -> None:
    """Die with the parent; hold none of its descriptors but ``keep`` and stdio."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(3)
    gc.disable()  # a collected object of the parent's could close a descriptor reused below
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = 65536 if limit == resource.RLIM_INFINITY else min(limit, 1 << 20)
    os.closerange(3, keep)
    os.closerange(keep + 1, limit)


def _send(fd: int, result: dict[str, Any], data: bytes = b"") -> None:
    """One JSON line, then ``data`` (the snapshot's bytes, when there are any)."""
    view = memoryview(json.dumps(result).encode() + b"\n" + data)
    while view:
        view = view[os.write(fd, view) :]


def _encode(state: Snapshottable, command_no: int, fd: int) -> None:
    started = perf_counter()
    encoded = codec.encode(state.engine, state.client_orders, command_no)
    result = {
        "digest": encoded.digest,
        "payload_bytes": encoded.payload_bytes,
        "duration_s": perf_counter() - started,
    }
    _send(fd, result, encoded.data)


def wait_child(pid: int, fd: int, timeout_s: float) -> tuple[dict[str, Any], bytes]:
    """The child's report and bytes (blocking); kills a child past ``timeout_s``."""
    chunks = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise ChildFailed(f"the forked process ran past {timeout_s:g} s; killed")
            ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if not ready:
                continue
            data = os.read(fd, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    received = b"".join(chunks)
    line, _, data = received.partition(b"\n")
    try:
        result: dict[str, Any] = json.loads(line) if line else {}
    except json.JSONDecodeError:
        result = {"error": f"unreadable report {line[:200]!r}"}
    if "error" in result or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        why = result.get("error") or f"the forked process ended with status {status}"
        raise ChildFailed(str(why))
    return result, data
