"""Pipelines run in child processes, so that a run can be stopped at once.

Pillow's work cannot be interrupted in a thread: a run past its time limit, or whose task was
cancelled, would go on burning a core to its end while the worker moved on. So each run goes
to a child process (`python -m pixelfleet.jobs.pipeline_processes`), and a run that must stop
ends with its process (SIGKILL), as Celery's prefork pool ends a child past its hard limit.
Children are kept and reused from run to run (starting one costs the interpreter and the
imaging code's imports, over half a second of CPU); only an ended one is replaced, and the
time limit counts from the moment a child has the job, not while one starts.

A parent and its child talk over a socket pair, in length-prefixed pickles: the job, then the
child's progress reports (the first stage at once, then at most one every
PROGRESS_INTERVAL_SECONDS: a short run sends one; the outcome carries every stage's time) and
its outcome. Both ends are this module, and nothing else holds
the sockets. A child ignores Ctrl-C (its worker decides when to stop) and dies with its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelfleet.errors import PixelFleetError
from pixelfleet.imaging.codecs import EncodedImage
from pixelfleet.imaging.rendered import ProgressReport
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.jobs.pipeline_runs import (
    PipelineCrashed,
    PipelineJob,
    PipelineRun,
    PipelineTimedOut,
)
from pixelfleet.jobs.stage_clock import StageClock
from pixelfleet.storage.base import StoredObjectMissing

log = logging.getLogger(__name__)

CHILD_MODULE = "pixelfleet.jobs.pipeline_processes"
_HEADER = struct.Struct("!Q")
# How a child allocates, so that the memory of a large image goes back to the system once its
# run is over (glibc otherwise keeps freed blocks, and a worker stays at its largest task's
# size): at most two malloc arenas (not one per thread that ever allocated), and every block
# of 1 MiB or more mapped on its own, returned when freed (a fixed threshold: glibc's moving
# one rises to 32 MiB after the first large free, and Pillow's 16 MiB blocks would then stay
# in the heap). Pillow keeps no freed blocks for reuse. The worker's own environment wins
# where it sets one of these.
CHILD_ALLOCATOR_ENV = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024),
    "PILLOW_BLOCKS_MAX": "0",
}
# A child reports its run's progress at most this often (the latest stage, once it is due).
PROGRESS_INTERVAL_SECONDS = 0.1
# A run that leaves the child this much larger than it found it is followed by a trim of the
# heap's free pages (what the fixed threshold above does not already give back).
TRIM_AFTER_GROWTH_BYTES = 16 * 1024 * 1024
# A child still this large once its run is over (what it kept despite the trim: fragments, a
# leak in a codec) is ended rather than kept; the next run starts a fresh one.
KEEP_CHILD_BELOW_BYTES = 256 * 1024 * 1024
# How long an ended child may take to be reaped (SIGKILL cannot be caught: it is immediate).
REAP_SECONDS = 5.0


class _ChildGone(Exception):
    """The child's end of the socket closed: the process has ended."""


class _Child:
    """One child process and the parent's end of its socket."""

    def __init__(self) -> None:
        parent_end, child_end = socket.socketpair()
        try:
            # Started from the event loop's thread, which lives as long as the worker: on
            # Linux the child asks to be killed when the thread that started it ends.
            self.process = subprocess.Popen(  # noqa: S603 (this interpreter, our module)
                [sys.executable, "-m", CHILD_MODULE, str(child_end.fileno()), str(os.getpid())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**CHILD_ALLOCATOR_ENV, **os.environ},
            )
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        self._socket = parent_end
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def resident_bytes(self) -> int:
        """The process's resident memory (0 where /proc cannot tell)."""
        return _resident_bytes(str(self.process.pid))

    async def _connected(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The streams, once the child said it is ready (the first use waits for its start)."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(sock=self._socket)
            if await self._receive(self._streams[0]) != ("ready",):
                raise _ChildGone("the pipeline process did not start as expected")
        return self._streams

    async def ready(self) -> None:
        await self._connected()

    async def _receive(self, reader: asyncio.StreamReader) -> tuple[Any, ...]:
        try:
            (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            message: tuple[Any, ...] = pickle.loads(await reader.readexactly(size))  # noqa: S301
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            status = await asyncio.to_thread(self._exit_status)
            raise _ChildGone(f"the pipeline process ended ({status})") from exc
        return message

    def _exit_status(self) -> str:
        """How the process ended; its socket closed as it exited, so it is a moment away."""
        try:
            code = self.process.wait(REAP_SECONDS)
        except subprocess.TimeoutExpired:
            return "its socket closed"
        return f"signal {-code}" if code < 0 else f"exit code {code}"

    async def run(self, job: PipelineJob, report: ProgressReport) -> PipelineRun:
        reader, writer = await self._connected()
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        writer.writelines([_HEADER.pack(len(payload)), payload])  # no copy of the image's bytes
        await writer.drain()
        while True:
            message = await self._receive(reader)
            kind = message[0]
            if kind == "progress":
                report(message[1], message[2])
            elif kind == "done":
                return PipelineRun(outputs=message[1], stages=message[2])
            elif kind == "refused":
                raise message[1]
            elif kind == "missing":
                raise StoredObjectMissing(message[1])
            elif kind == "crashed":
                raise PipelineCrashed(message[1])
            else:
                raise _ChildGone(f"the pipeline process sent {kind!r}")

    def end(self) -> None:
        """Ends the process now (whatever it is doing) and closes its socket."""
        if self.alive:
            self.process.kill()
        try:
            self.process.wait(REAP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("pipeline process %d did not end after SIGKILL", self.process.pid)
        if self._streams is not None:
            self._streams[1].close()
        else:
            self._socket.close()


class PipelineProcesses:
    """A process's pipeline children: at most `size` runs at once, each in its own child;
    an idle child is reused, and one that had to be ended is replaced by the next run (a
    stopped run leaves nothing busy behind it). Used from one event loop."""

    def __init__(
        self, size: int | None = None, *, keep_below_bytes: int = KEEP_CHILD_BELOW_BYTES
    ) -> None:
        self.size = size or os.cpu_count() or 1
        self.keep_below_bytes = keep_below_bytes
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._closed = False

    @property
    def pids(self) -> set[int]:
        """The process ids of its children, idle or running."""
        return {child.process.pid for child in self._all}

    def _start(self) -> _Child:
        child = _Child()
        self._all.add(child)
        return child

    def _end(self, child: _Child) -> None:
        self._all.discard(child)
        child.end()

    def warm(self) -> None:
        """Starts a child now (if none is idle), so the first run does not wait for one."""
        if not self._idle and not self._closed:
            self._idle.append(self._start())

    def _take(self) -> _Child:
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                return child
            self._end(child)  # died while idle (the OOM killer, say): not this run's fault
        return self._start()

    async def run(
        self, job: PipelineJob, report: ProgressReport, *, time_limit: float
    ) -> PipelineRun:
        """Runs `job` in a child, `report`ing its progress. The time limit counts from the
        moment the child has the job (not while a fresh child starts). A run cancelled, past
        its limit, or whose child died, ends its child: PipelineTimedOut past the limit,
        PipelineCrashed for a death or an unexpected error, the imaging error for a refusal."""
        if self._closed:
            raise RuntimeError("the pipeline processes are closed")
        async with self._slots:
            child = self._take()
            healthy = False
            try:
                await child.ready()
                try:
                    async with asyncio.timeout(time_limit):
                        run = await child.run(job, report)
                except TimeoutError:
                    raise PipelineTimedOut(
                        f"the pipeline ran past its limit of {time_limit:g} seconds"
                    ) from None
                healthy = True
                return run
            except (PixelFleetError, PipelineCrashed):
                healthy = True  # the child reported it and waits for its next job
                raise
            except _ChildGone as exc:
                raise PipelineCrashed(str(exc)) from exc
            finally:
                if healthy and not self._closed and self._small(child):
                    self._idle.append(child)
                else:
                    self._end(child)  # the next run starts its replacement

    def _small(self, child: _Child) -> bool:
        if child.resident_bytes() < self.keep_below_bytes:
            return True
        log.info("pipeline process %d kept memory after its run; ending it", child.process.pid)
        return False

    async def close(self) -> None:
        """Ends every child (idle or running)."""
        self._closed = True
        self._idle.clear()
        for child in list(self._all):
            self._end(child)


# ------------------------------------------------------------------------------------------------
# The child's side.


class _Channel:
    """The child's end of the socket: blocking, one message at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._file = sock.makefile("rb")

    def send(self, message: tuple[Any, ...]) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._socket.sendall(_HEADER.pack(len(payload)))
        self._socket.sendall(payload)

    def receive(self) -> PipelineJob | None:
        """The next job, or None once the parent closed its end."""
        header = self._file.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(header)
        body = self._file.read(size)
        if len(body) < size:
            return None
        job: PipelineJob = pickle.loads(body)  # noqa: S301 (from the parent, over a socket pair)
        return job


def _end_with_parent(parent: int) -> None:
    """The child must not outlive its worker (a killed worker would leave its run going)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    else:  # elsewhere, look now and then

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it died before the request above took effect
        os._exit(1)


def _refused(exc: PixelFleetError) -> tuple[Any, ...]:
    """The refusal as a message, if it crosses the socket intact; else as a crash."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own bytes)
    except Exception:
        return ("crashed", "".join(traceback.format_exception(exc)))
    return ("refused", exc)


class _Progress:
    """A run's progress reports, thinned out: a report due (PROGRESS_INTERVAL_SECONDS after
    the last one sent) goes out at once; one that comes sooner waits, replaced by any newer
    one, and goes out when it is due, unless the run has ended by then (its outcome says more).
    A thread of its own sends those late ones, so a long stage is reported while it runs."""

    def __init__(self, channel: _Channel, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self._channel = channel
        self._interval = interval
        self._changed = threading.Condition()
        self._pending: tuple[str, int] | None = None
        self._sent_at = -interval
        threading.Thread(target=self._send_late, name="progress", daemon=True).start()

    def start(self) -> None:
        with self._changed:
            self._pending, self._sent_at = None, -self._interval

    def report(self, stage: str, percent: int) -> None:
        with self._changed:
            self._pending = (stage, percent)
            if time.monotonic() - self._sent_at >= self._interval:
                self._send()
            else:
                self._changed.notify()

    def finish(self) -> None:
        """The run is over: nothing more is sent for it (its outcome follows)."""
        with self._changed:
            self._pending = None

    def _send(self) -> None:
        assert self._pending is not None
        self._channel.send(("progress", *self._pending))
        self._pending, self._sent_at = None, time.monotonic()

    def _send_late(self) -> None:
        with contextlib.suppress(OSError), self._changed:
            while True:
                if self._pending is None:
                    self._changed.wait()
                    continue
                due = self._sent_at + self._interval - time.monotonic()
                if due > 0:
                    self._changed.wait(due)
                    continue
                self._send()


def _resident_bytes(pid: str = "self") -> int:
    """A process's resident memory, this one's by default (Linux; 0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _trimmer() -> Callable[[int], object] | None:
    """glibc's `malloc_trim(0)`: gives the heap's free pages back to the system."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def serve(channel: _Channel, run: Callable[[PipelineJob, ProgressReport], Any]) -> None:
    """Answers jobs until the parent closes the socket. After a run that grew the process,
    its freed memory goes back to the system before the outcome is sent, so a child that its
    parent finds idle is about as small as it started."""
    channel.send(("ready",))
    trim = _trimmer()
    progress = _Progress(channel)
    while (job := channel.receive()) is not None:
        resident = _resident_bytes()
        progress.start()
        clock = StageClock(progress.report)
        outcome: tuple[Any, ...]
        try:
            try:
                outputs = run(job, clock.report)
                clock.stop()
            finally:
                progress.finish()
        except PixelFleetError as exc:
            outcome = _refused(exc)
        except StoredObjectMissing as exc:
            outcome = ("missing", str(exc))
        except Exception as exc:
            outcome = ("crashed", "".join(traceback.format_exception(exc)))
        else:
            outcome = ("done", outputs, clock.stages())
            del outputs
        del job
        if trim is not None and _resident_bytes() - resident > TRIM_AFTER_GROWTH_BYTES:
            trim(0)
        channel.send(outcome)
        del outcome


def _run_job(job: PipelineJob, report: ProgressReport) -> dict[str, EncodedImage]:
    data = job.source
    if isinstance(data, Path):
        try:
            data = data.read_bytes()
        except FileNotFoundError:
            raise StoredObjectMissing(str(data)) from None
    return run_pipeline(data, job.pipeline, job.limits, report, job.assets)


def main(argv: list[str]) -> None:
    fd, parent = int(argv[0]), int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the worker decides
    _end_with_parent(parent)
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    with contextlib.suppress(BrokenPipeError, ConnectionError):
        serve(_Channel(socket.socket(fileno=fd)), _run_job)


if __name__ == "__main__":
    main(sys.argv[1:])
