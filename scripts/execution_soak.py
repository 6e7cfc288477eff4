"""Soak test for notebook execution: run chapters N times in a row and catch stalls.

What it is for. ``make book`` once sat 15 minutes in Chapter 6 with the kernel and the
client both idle (kernel main thread in ``epoll_wait``, jupyter-book in ``nbclient.execute``),
then went on. The stall is intermittent, so one build says little. This script executes the
given chapters again and again *the way the book build does* (myst-nb -> jupyter-cache ->
``nbclient.NotebookClient``: the notebook's kernel, cwd ``notebooks/``, cells tagged
``skip-execution`` skipped, ``allow_errors=False``), with ``WSG_PROFILE=tiny`` and
``TQDM_DISABLE=1`` in the kernel's environment, optionally with a busy-loop process on the
other core, and with a short per-cell timeout so that a stall costs little and is named.

What it found (the cause). The stall is in the *client*, not the kernel, and it comes from
widget cells such as ``wsg.viz.explorer`` (``ipywidgets.interact``, whose output goes through
an Output widget). nbclient mimics the front end's Output widget: for each output it captures
it sends a ``comm_msg`` back to the kernel on the *shell* channel, from the task that reads
IOPub, while another task awaits the cell's ``execute_reply`` on that same shell socket.
jupyter_client's ``Session.send`` sends on a synchronous shadow of the asyncio socket, and that
send can consume the socket's edge-triggered wake-up (ZMQ_FD) for a reply that has just
arrived; pyzmq's asyncio poll is not told, so the reply sits in the socket until the poll
times out at the cell timeout, when pyzmq polls once more, finds it, and the cell *passes*.
Hence exactly 900 s, then "went on", with no error. Public reports: jupyter/nbclient#312 (and
its PR #311), jupyter/jupyter_client#1059, jupyter/nbconvert#2029. ipykernel's version plays no
part: it stalls with 6.31.0 as with 7.4.0, and not with ``--no-output-widget`` or ``--client-fix``.

So a stall usually shows as a cell that takes the whole timeout while the kernel idles; such a
run is reported as STALL (recovered at the timeout). A cell that *fails* on the timeout is
STALL when the kernel idled meanwhile and SLOW when it computed (the timeout is too short for
the machine). For every run it prints the wall time, the kernel's CPU time (``/proc``), the
longest cell with its time and CPU, the number of "Timeout waiting for IOPub output" warnings,
and the longest delay between an execute_reply's date (stamped by the kernel) and the client
handling it. ``--probe-after S`` checks, for a cell still waiting after S s, whether its reply
already waits in the client's socket (ZMQ_EVENTS). On a timeout error it records the kernel's
threads, a ``py-spy dump`` when ``py-spy`` is on PATH (or in $PY_SPY), and whether a second
client gets an answer. It exits 1 if any run stalled or failed, 0 otherwise.

How to run it (from the repository root, niced: the machine is shared)::

    nice -n 10 .venv/bin/python scripts/execution_soak.py 06_fian 03_wsra --runs 10 --load
    nice -n 10 .venv/bin/python scripts/execution_soak.py 03_wsra --runs 5 --cell-timeout 60 \\
        --keep-going --log _build/soak.jsonl                 # stalls then cost 60 s each
    nice -n 10 .venv/bin/python scripts/execution_soak.py 03_wsra --runs 5 --client-fix

Chapters are given as stems (``06_fian``) or paths to ``.ipynb`` files. ``--cell-timeout``
must exceed the longest cell on the machine (the Makefile's ``CELL_TIMEOUT`` is the build's);
``--log`` appends one JSON object per run to a file.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.output_widget import OutputWidget

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_loop(cpu: int | None) -> None:  # pragma: no cover - runs in a child process
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except (AttributeError, OSError):
            pass
    while True:
        pass


def _proc_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and of its waited-for children."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the ")": state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def _utc(stamp: str | None) -> float | None:
    """Seconds since the epoch of an nbclient timing stamp ("...T12:00:00.123456Z")."""
    try:
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def _threads(pid: int) -> list[str]:
    """One line per thread of a process: name, state, CPU seconds, kernel wait channel."""
    lines = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            wchan = (task / "wchan").read_text().strip() if (task / "wchan").exists() else "?"
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        lines.append(f"{task.name:>8} {name:<20} state={fields[0]} cpu={cpu:.2f}s wchan={wchan}")
    return lines


def _py_spy(pid: int) -> str | None:
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"py-spy failed: {err}"


class _IOPubWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Timeout waiting for IOPub" in record.getMessage():
            self.count += 1


class RearmingOutputWidget(OutputWidget):
    """nbclient's Output-widget mimic, plus a re-check of the shell socket after each send.

    The mimic sends its comm_msg on the shell channel while nbclient awaits the cell's
    execute_reply on that same socket; jupyter_client's Session.send sends on a *sync shadow*
    of the asyncio socket, which can swallow the socket's edge-triggered wake-up, so the
    reply sits unread until the cell timeout. Asking pyzmq to re-check the socket's events
    after the send (what its own asyncio send does) closes that window. For --client-fix.
    """

    def _publish_msg(self, *args, **kwargs):
        super()._publish_msg(*args, **kwargs)
        socket = self.kernel_client.shell_channel.socket
        reschedule = getattr(socket, "_schedule_remaining_events", None)  # pyzmq's zmq.asyncio.Socket
        if reschedule is not None:
            reschedule()


class SoakClient(NotebookClient):
    """nbclient's NotebookClient plus per-cell timing, kernel CPU and stall diagnostics."""

    def __init__(self, *args, nudge: bool = True, probe_after: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.nudge = nudge
        self.probe_after = probe_after
        self.probes: list[dict] = []
        self._probe_handle = None
        self.cell_times: dict[int, float] = {}
        self.cell_cpu: dict[int, float] = {}  # kernel CPU seconds per cell
        # per cell: seconds from the kernel's busy status to its execute_reply (the message
        # headers' dates), and from that reply's date until the client had handled it
        self.reply_timing: dict[int, tuple[float, float]] = {}
        self.kernel_pid: int | None = None
        self.kernel_cpu: float | None = None
        self.stall: dict | None = None
        self._t0 = 0.0
        self._cpu0: float | None = None
        self._current = -1
        self.on_notebook_start = self._notebook_start
        self.on_cell_start = self._cell_start
        self.on_cell_executed = self._cell_executed

    def _pid(self) -> int | None:
        prov = getattr(self.km, "provisioner", None)
        pid = getattr(prov, "pid", None) or getattr(getattr(prov, "process", None), "pid", None)
        return pid

    def _notebook_start(self, notebook) -> None:
        self.kernel_pid = self._pid()

    def _cell_start(self, cell, cell_index) -> None:
        self._current = cell_index
        self._t0 = time.monotonic()
        self._cpu0 = _proc_cpu(self.kernel_pid)
        if self.probe_after > 0:
            self._probe_handle = asyncio.get_running_loop().call_later(self.probe_after, self._probe, cell_index)

    def _probe(self, cell_index) -> None:
        """A cell still waiting after --probe-after s: is its reply already in the client's socket?

        ZMQ_EVENTS on the client's shell socket says whether a message is waiting there. POLLIN
        while nbclient still waits means the reply reached the client and only the wake-up of
        the client's asyncio poll was lost; no POLLIN with an idle kernel means it never left
        the kernel (or its request never reached the kernel's main thread). pyzmq's asyncio
        socket, asked for ZMQ_EVENTS, also schedules its waiting pollers, so a probe that finds
        a stranded reply ends that stall too (the cell ends just after the probe, not at the
        timeout): the poller had only not been told.
        """
        import zmq

        cpu = _proc_cpu(self.kernel_pid)
        try:
            events = self.kc.shell_channel.socket.get(zmq.EVENTS)
            waiting = bool(events & zmq.POLLIN)
        except Exception as err:  # noqa: BLE001 - diagnostics only
            waiting = repr(err)
        self.probes.append({"cell": cell_index, "after_s": self.probe_after, "reply_waiting_in_client": waiting,
                            "kernel_cpu_during_cell_s": None if cpu is None or self._cpu0 is None
                            else round(cpu - self._cpu0, 2)})

    def _cell_executed(self, cell, cell_index, execute_reply) -> None:
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        self.cell_times[cell_index] = time.monotonic() - self._t0
        ex = cell.get("metadata", {}).get("execution", {})
        busy, reply = _utc(ex.get("iopub.status.busy")), _utc(ex.get("shell.execute_reply"))
        if busy is not None and reply is not None:
            self.reply_timing[cell_index] = (reply - busy, time.time() - reply)
        cpu = _proc_cpu(self.kernel_pid)
        if cpu is not None:
            self.kernel_cpu = cpu
            if self._cpu0 is not None:
                self.cell_cpu[cell_index] = cpu - self._cpu0

    async def _async_handle_timeout(self, timeout, cell=None):
        """Gather evidence about the stall, then fail the run as nbclient would."""
        pid = self.kernel_pid
        cpu = _proc_cpu(pid)
        info: dict = {
            "cell": self._current,
            "timeout_s": timeout,
            "first_line": "".join(cell.source).strip().splitlines()[0][:80] if cell and cell.source else "",
            "kernel_cpu_during_cell_s": None if cpu is None or self._cpu0 is None else round(cpu - self._cpu0, 2),
            "threads": _threads(pid) if pid else [],
            "py_spy": _py_spy(pid) if pid else None,
        }
        if cpu is not None:
            self.kernel_cpu = cpu
        # idle: the kernel used under 5% of a core while the client waited, so nothing was
        # computing; busy: a slow cell (raise --cell-timeout) rather than a lost message
        cpu_cell = info["kernel_cpu_during_cell_s"]
        info["kernel"] = "unknown" if cpu_cell is None else "idle" if cpu_cell < 0.05 * timeout else "busy"
        if self.nudge:
            info["reply_after_nudge"] = await self._nudge()
        self.stall = info
        return await super()._async_handle_timeout(timeout, cell)

    async def _nudge(self) -> str:
        """Connect a second client, ask kernel_info on its shell channel, and see whether the
        first client's missing execute_reply (or any shell reply) arrives within 20 s."""
        try:
            kc2 = self.km.client()
            kc2.start_channels()
            try:
                info = await asyncio.wait_for(kc2.kernel_info(reply=True, timeout=10), 15)
                nudge = f"second client's kernel_info_reply: {info['content'].get('status')}"
            except Exception as err:  # noqa: BLE001 - diagnostics only
                nudge = f"second client's kernel_info failed: {err!r}"
            finally:
                kc2.stop_channels()
            t0 = time.monotonic()
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=20)
                return (f"{nudge}; then the first client got its {msg['msg_type']} "
                        f"{time.monotonic() - t0:.1f} s later")
            except Exception:  # noqa: BLE001 - queue.Empty
                return f"{nudge}; the first client still got no reply within 20 s"
        except Exception as err:  # noqa: BLE001
            return f"nudge failed: {err!r}"


def _resolve(chapter: str) -> Path:
    p = Path(chapter)
    if p.suffix == ".ipynb" and p.exists():
        return p.resolve()
    matches = sorted(NOTEBOOKS.glob(f"{chapter}*.ipynb"))
    if len(matches) != 1:
        sys.exit(f"chapter {chapter!r}: {len(matches)} notebooks match in {NOTEBOOKS}")
    return matches[0]


def run_once(path: Path, args, handler: _IOPubWarnings) -> dict:
    nb = nbformat.read(path, as_version=4)
    extra = {"kernel_name": args.kernel} if args.kernel else {}  # default: the notebook's kernelspec
    client = SoakClient(
        nb,
        **extra,
        timeout=args.cell_timeout,
        allow_errors=False,
        record_timing=True,  # only adds the messages' dates to the cells' metadata
        resources={"metadata": {"path": str(path.parent)}},
        nudge=not args.no_nudge,
        probe_after=args.probe_after,
    )
    if args.no_output_widget:  # no Output-widget mimic: nbclient then never sends on the shell channel
        client.widget_registry = {}
    elif args.client_fix:
        client.widget_registry = {"@jupyter-widgets/output": {"OutputModel": RearmingOutputWidget}}
    client.log.addHandler(handler)
    handler.count = 0
    t0 = time.monotonic()
    status, error = "ok", None
    try:
        client.execute()
    except CellTimeoutError as err:
        busy = client.stall is not None and client.stall.get("kernel") == "busy"
        status, error = ("SLOW" if busy else "STALL"), str(err).strip().splitlines()[0]
    except (CellExecutionError, DeadKernelError, RuntimeError) as err:
        status, error = "ERROR", f"{type(err).__name__}: {str(err).strip()[:300]}"
    wall = time.monotonic() - t0
    longest = max(client.cell_times.items(), key=lambda kv: kv[1], default=(None, 0.0))
    # A lost message need not end in a timeout error: when nbclient's wait for the execute_reply
    # times out, pyzmq polls the socket once more, finds a reply that was there all along, and the
    # cell passes after exactly the timeout. So a cell that took about the timeout while the kernel
    # idled is a stall too, recovered at the timeout (the reviewer's 15 minutes at 900 s).
    recovered = [i for i, t in client.cell_times.items()
                 if t >= 0.95 * args.cell_timeout and client.cell_cpu.get(i, 0.0) < 0.05 * t]
    if status == "ok" and recovered:
        i = recovered[0]
        k, lag = client.reply_timing.get(i, (float("nan"), float("nan")))
        status, error = "STALL", (f"cell #{i} took {client.cell_times[i]:.1f} s (the timeout) with the kernel "
                                  f"idle: its execute_reply was dated {k:.1f} s after the kernel went busy "
                                  f"and handled by the client {lag:.1f} s after that date")
    first = ""
    if longest[0] is not None:
        src = nb.cells[longest[0]].source.strip().splitlines()
        first = src[0][:60] if src else ""
    return {
        "chapter": path.stem,
        "status": status,
        "wall_s": round(wall, 1),
        "kernel_cpu_s": None if client.kernel_cpu is None else round(client.kernel_cpu, 1),
        "cells_run": len(client.cell_times),
        "longest_cell": longest[0],
        "longest_cell_s": round(longest[1], 1),
        "longest_cell_cpu_s": round(client.cell_cpu.get(longest[0], float("nan")), 1),
        "longest_cell_line": first,
        "iopub_timeouts": handler.count,
        "max_reply_lag_s": round(max((lag for _, lag in client.reply_timing.values()), default=0.0), 1),
        "error": error,
        "stall": client.stall,
        "probes": client.probes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="+", help="chapter stems (06_fian) or .ipynb paths")
    ap.add_argument("--runs", type=int, default=10, help="executions of each chapter (default 10)")
    ap.add_argument("--cell-timeout", type=int, default=600,
                    help="seconds per cell (default 600, the Makefile's CELL_TIMEOUT for tiny); a stall "
                         "costs this long")
    ap.add_argument("--load", action="store_true", help="keep a busy-loop process on the last CPU core")
    ap.add_argument("--kernel", default=None, help="kernel name (default: the notebook's, python3)")
    ap.add_argument("--profile", default="tiny", help="WSG_PROFILE for the kernel (default tiny)")
    ap.add_argument("--log", type=Path, default=None, help="append one JSON object per run to this file")
    ap.add_argument("--no-nudge", action="store_true",
                    help="on a timeout error, do not connect a second client to ask the kernel for kernel_info")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first stall")
    fix = ap.add_mutually_exclusive_group()
    fix.add_argument("--no-output-widget", action="store_true",
                     help="experiment: drop nbclient's Output-widget mimic (its comm_msg sends on the shell "
                          "channel race the execute_reply; the widget's outputs then land in the cell)")
    fix.add_argument("--client-fix", action="store_true",
                     help="experiment: keep the mimic but re-check the shell socket after each of its sends")
    ap.add_argument("--probe-after", type=float, default=0.0, metavar="S",
                    help="for a cell still running after S s, record whether its reply already waits in "
                         "the client's shell socket (ZMQ_EVENTS); 0: off (default)")
    args = ap.parse_args(argv)

    os.environ["WSG_PROFILE"] = args.profile  # the kernel inherits this process's environment
    os.environ["TQDM_DISABLE"] = "1"
    paths = [_resolve(c) for c in args.chapters]

    import ipykernel
    import jupyter_client
    import nbclient
    import zmq
    print(f"ipykernel {ipykernel.__version__}, nbclient {nbclient.__version__}, jupyter_client "
          f"{jupyter_client.__version__}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}; "
          f"cell timeout {args.cell_timeout} s; load {'on' if args.load else 'off'}; "
          f"WSG_PROFILE={args.profile}"
          + ("; Output-widget mimic off" if args.no_output_widget else "")
          + ("; client fix on" if args.client_fix else ""), flush=True)

    load = None
    if args.load:
        cpu = (os.cpu_count() or 1) - 1
        load = mp.Process(target=_busy_loop, args=(cpu,), daemon=True)
        load.start()

    handler = _IOPubWarnings()
    rows, failed = [], False
    try:
        for i in range(1, args.runs + 1):
            for path in paths:
                row = {"run": i, **run_once(path, args, handler)}
                rows.append(row)
                print(f"run {i:>3}  {row['chapter']:<24} {row['status']:<5} wall {row['wall_s']:7.1f} s  "
                      f"kernel CPU {row['kernel_cpu_s']} s  longest cell #{row['longest_cell']} "
                      f"{row['longest_cell_s']:.1f} s, CPU {row['longest_cell_cpu_s']} s ({row['longest_cell_line']})  "
                      f"IOPub timeouts {row['iopub_timeouts']}  max reply lag {row['max_reply_lag_s']} s",
                      flush=True)
                if row["error"]:
                    print(f"    {row['error']}", flush=True)
                for p in row["probes"]:
                    print(f"    probe: cell #{p['cell']} still waiting after {p['after_s']} s, kernel CPU "
                          f"{p['kernel_cpu_during_cell_s']} s, reply waiting in the client's socket: "
                          f"{p['reply_waiting_in_client']}", flush=True)
                if row["stall"]:
                    s = row["stall"]
                    print(f"    stalled in cell #{s['cell']} ({s['first_line']}) after {s['timeout_s']} s; "
                          f"kernel CPU during the cell {s['kernel_cpu_during_cell_s']} s ({s['kernel']})", flush=True)
                    for line in s["threads"]:
                        print(f"    {line}", flush=True)
                    if s.get("py_spy"):
                        print("    " + s["py_spy"].replace("\n", "\n    "), flush=True)
                    if s.get("reply_after_nudge"):
                        print(f"    nudge: {s['reply_after_nudge']}", flush=True)
                if args.log:
                    args.log.parent.mkdir(parents=True, exist_ok=True)
                    with args.log.open("a") as f:
                        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                            "cell_timeout": args.cell_timeout, "load": args.load,
                                            "ipykernel": ipykernel.__version__, **row}) + "\n")
                if row["status"] != "ok":
                    failed = True
                    if not args.keep_going:
                        raise StopIteration
    except StopIteration:
        pass
    finally:
        if load is not None:
            load.terminate()
            load.join()

    print("\nrun  chapter                   status  wall s  kernel CPU s  longest cell s")
    for r in rows:
        print(f"{r['run']:>3}  {r['chapter']:<24}  {r['status']:<6} {r['wall_s']:7.1f}  "
              f"{'' if r['kernel_cpu_s'] is None else r['kernel_cpu_s']:>12}  {r['longest_cell_s']:>14.1f}")
    count = {k: sum(r["status"] == k for r in rows) for k in ("STALL", "SLOW", "ERROR")}
    print(f"{len(rows)} executions: {count['STALL']} stalled (idle kernel), {count['SLOW']} timed out "
          f"in a busy cell, {count['ERROR']} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
