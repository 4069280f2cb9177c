"""math-verify in a child process that is killed when it takes too long.

``math_verify.verify`` can run for minutes (sympy simplifying a huge expression) and its own
timeout uses ``signal.alarm``, which fails outside the main thread and cannot stop C-level sympy
code. :func:`equivalent` therefore sends each comparison to one long-lived child Python
(:func:`_worker_main`) and waits at most ``timeout`` seconds for its answer; a child that does not
answer in time is killed (the comparison counts as not equal) and a fresh one starts on the next call.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading

MATH_VERIFY_TIMEOUT_S = 5.0
_WORKER_STARTUP_TIMEOUT_S = 120.0

logger = logging.getLogger(__name__)


def equivalent(gold: str, prediction: str, timeout: float = MATH_VERIFY_TIMEOUT_S) -> bool:
    """Whether math-verify shows ``prediction`` equal to ``gold`` (both wrapped in ``\\boxed{}``)
    within ``timeout`` seconds; False when it cannot, fails or runs out of time."""
    return _WORKER.equal(gold, prediction, timeout)


def _verify_in_process(gold: str, prediction: str, *, timeout: int | None = None) -> bool:
    from math_verify import parse, verify

    gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
    pred_parsed = parse(f"\\boxed{{{prediction}}}", parsing_timeout=timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def _worker_main() -> None:
    """Child-process loop: one JSON ``[gold, prediction]`` per stdin line -> ``1``/``0`` per line."""
    logging.disable(logging.WARNING)   # math-verify warns that its (signal) timeout is disabled
    replies, sys.stdout = sys.stdout, sys.stderr   # stray prints must not corrupt the protocol
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        try:
            gold, prediction = json.loads(line)
            ok = _verify_in_process(gold, prediction)
        except Exception:   # any parse/verify failure means "not shown equal"
            ok = False
        replies.write("1\n" if ok else "0\n")
        replies.flush()


class _VerifyWorker:
    """One long-lived child Python running ``_worker_main``; killed and restarted on a timeout.

    A child process (not a thread) because a runaway sympy computation holds the GIL in C code
    and ignores signals; started with ``subprocess`` (not ``multiprocessing``) so that it never
    re-imports the user's ``__main__`` and is safe after fork and from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._replies: queue.Queue | None = None
        self._owner_pid = -1
        self._broken = False

    def equal(self, gold: str, prediction: str, timeout: float) -> bool:
        with self._lock:
            for _ in range(2):   # a worker that died since the last call gets one replacement
                if self._broken:
                    return self._fallback(gold, prediction)
                try:
                    if self._proc is None or self._proc.poll() is not None or self._owner_pid != os.getpid():
                        self._start()
                except (OSError, RuntimeError) as err:
                    logger.warning("math-verify worker unavailable (%s): comparing in-process", err)
                    self.close()
                    self._broken = True
                    continue
                try:
                    self._proc.stdin.write(json.dumps([gold, prediction]) + "\n")
                    self._proc.stdin.flush()
                except OSError:
                    self.close()
                    continue
                try:
                    reply = self._replies.get(timeout=timeout)
                except queue.Empty:
                    logger.warning("math-verify took more than %.0f s on %r vs %r: counted as wrong",
                                   timeout, prediction[:80], gold[:80])
                    reply = "timeout"
                if reply not in ("0", "1"):   # timed out or crashed (e.g. out of memory)
                    self.close()
                return reply == "1"
            return False

    def _start(self) -> None:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from sar_lib.verify_worker import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1, env=env)
        self._owner_pid = os.getpid()
        self._replies = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._replies), daemon=True).start()
        try:
            ready = self._replies.get(timeout=_WORKER_STARTUP_TIMEOUT_S)
        except queue.Empty:
            ready = None
        if ready != "ready":
            raise RuntimeError("the math-verify child process did not start")

    def close(self) -> None:
        if self._proc is not None and self._owner_pid == os.getpid():
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    @staticmethod
    def _fallback(gold: str, prediction: str) -> bool:
        # Without a child process the only bound left is math-verify's signal alarm (main thread).
        in_main = threading.current_thread() is threading.main_thread()
        try:
            return _verify_in_process(gold, prediction, timeout=int(MATH_VERIFY_TIMEOUT_S) if in_main else None)
        except Exception:
            return False


def _pump(stream, replies: queue.Queue) -> None:
    for line in stream:
        replies.put(line.strip())
    replies.put("exited")   # a crashed worker answers "not equal" at once instead of timing out


_WORKER = _VerifyWorker()
atexit.register(_WORKER.close)
