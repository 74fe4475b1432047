"""recplay coverage agent for Python: per-test line and branch coverage.

Speaks protocol version 1 (docs/coverage-protocol.md): connects to the Unix
socket named in RECPLAY_COVERAGE_SOCKET, says `hello`, then answers
`snapshot` requests with the lines (and arcs) run since the previous
snapshot, and one `static` request with every source file's coverable lines
and branches. Only `coverage` (coverage.py) must be installed in the app.

Engines (`engine` in `hello`):
- "monitor" (recplay_line_monitor.py), the default on Python 3.12+ for line
  coverage and on 3.12 and 3.13 for branch coverage (RECPLAY_COVERAGE_BRANCH,
  on by default): sys.monitoring LINE events (and BRANCH events, mapped to
  coverage.py's arcs) enabled only on the measured files' code, each line
  reporting once per test; mode "rearm". RECPLAY_COVERAGE_ENGINE=ctrace
  asks for coverage.py's C tracer everywhere.
- coverage.py, with the core COVERAGE_CORE names in the app's environment,
  else its C tracer ("ctrace"): on Python 3.11 and older, for branch
  coverage on 3.14 and later (also where coverage.py would pick
  sys.monitoring), and when the monitor cannot start.

How snapshots are cut with coverage.py:
- C or Python tracer: a stop/erase/start cycle loses every line run
  afterwards on threads that already exist, because their tracer keeps
  writing into the discarded data. What works is what switch_context
  does: flush the tracer's per-file sets and empty them in place. Mode
  "drain" does exactly that into an in-memory sink (a few milliseconds);
  mode "context" (fallback when the collector looks different) switches to
  a fresh context label and reads the previous one back from coverage.py's
  in-memory SQLite store.
- sys.monitoring (coverage.py's "sysmon" core: Python 3.14+, or 3.12+ for
  lines only): a line reports once and is then disabled, so a new context
  label would never see it again; mode "restart" (stop, read, erase, start)
  re-arms the events, and sys.monitoring covers all threads. coverage.py's
  core watches every function of the process, so each re-arming costs the
  whole app's calls: on a Django/DRF app under Python 3.13
  (bench/coverage/django.sh, lines only) the median test took 2.3 ms
  without coverage, 4.0 ms with the C tracer (snapshots 0.3 ms) and
  12.4 ms with coverage.py's sysmon (snapshots 6.7 ms).
"""

import fnmatch
import json
import os
import re
import socket
import sys
import threading

PROTOCOL_VERSION = 1
SOCKET_ENV = "RECPLAY_COVERAGE_SOCKET"
ROOT_ENV = "RECPLAY_COVERAGE_ROOT"
BRANCH_ENV = "RECPLAY_COVERAGE_BRANCH"
# Forces a snapshot mode ("drain", "context"; "restart" only with sysmon).
MODE_ENV = "RECPLAY_COVERAGE_MODE"
# "ctrace" keeps coverage.py's C tracer where the "monitor" engine would run.
ENGINE_ENV = "RECPLAY_COVERAGE_ENGINE"

# Third-party code and environments are not the app's source.
SKIPPED_DIRS = {"site-packages", "dist-packages", "__pycache__", "node_modules"}
OMIT_PATTERNS = [
    "*/site-packages/*",
    "*/dist-packages/*",
    "*/.venv/*",
    "*/venv/*",
    "*/.tox/*",
]

_agent = None


def _warn(message):
    sys.stderr.write(f"recplay coverage [{os.getpid()}]: {message}\n")


def activate():
    """Starts measuring and connects to recplay; safe to call twice."""
    global _agent
    socket_path = os.environ.get(SOCKET_ENV)
    if not socket_path or _agent is not None:
        return
    try:
        import coverage
    except ImportError:
        _warn("coverage is not installed in this interpreter (pip install coverage); "
              "no per-test coverage for this process")
        return
    agent = Agent(socket_path, coverage)
    agent.begin()
    _agent = agent


class _Sink:
    """Takes what coverage.py's collector flushes (CoverageData's add_*
    interface) and hands it out once per snapshot."""

    def __init__(self):
        self.lines = {}
        self.arcs = {}

    def add_lines(self, line_data):
        for path, lines in line_data.items():
            if lines:
                self.lines.setdefault(path, set()).update(lines)

    def add_arcs(self, arc_data):
        for path, arcs in arc_data.items():
            if arcs:
                self.arcs.setdefault(path, set()).update(arcs)

    def add_file_tracers(self, file_tracers):
        pass

    def set_context(self, context):
        return None

    def take(self):
        files = {}
        for path, lines in self.lines.items():
            files[path] = {"lines": sorted(lines)}
        for path, arcs in self.arcs.items():
            lines = {n for arc in arcs for n in arc if n > 0}
            files[path] = {"lines": sorted(lines), "arcs": [list(arc) for arc in sorted(arcs)]}
        self.lines = {}
        self.arcs = {}
        return files


class _NoHash:
    def update(self, value):
        pass


def _skip_hashing(data):
    # coverage.py hashes every line and arc it stores, in Python, to name
    # data files; in-memory snapshots never need that hash, and it was most
    # of a snapshot's cost.
    if hasattr(data, "_hasher"):
        data._hasher = _NoHash()


class Agent:
    def __init__(self, socket_path, coverage_module):
        self.socket_path = socket_path
        self.coverage_version = getattr(coverage_module, "__version__", "unknown")
        self.root = os.path.realpath(os.environ.get(ROOT_ENV) or os.getcwd())
        self.branch = os.environ.get(BRANCH_ENV, "1").lower() not in ("0", "false", "no", "off")
        here = os.path.dirname(os.path.realpath(__file__))
        self.omit = OMIT_PATTERNS + [os.path.join(here, "*")]
        self.cov = coverage_module.Coverage(
            data_file=None,
            branch=self.branch,
            include=[os.path.join(self.root, "*")],
            omit=self.omit,
            config_file=False,
        )
        self.monitor = None
        if not os.environ.get("COVERAGE_CORE"):
            try:
                self.cov.set_option("run:core", "ctrace")
            except Exception:
                pass  # a coverage.py without the option has no other core
        # Snapshots routinely find nothing new; that is not worth a warning
        # in the app's log.
        self.cov.set_option("run:disable_warnings", [
            "no-data-collected", "module-not-measured", "module-not-imported",
            "no-ctracer", "no-sysmon-context",
        ])
        # Held by every snapshot and across fork(), so a child never inherits
        # coverage's data half-way through a snapshot.
        self.lock = threading.Lock()
        self.sequence = 0
        self.label = None
        self.sock = None
        self.engine = "unknown"
        self.mode = "context"

    def begin(self):
        if self._wants_monitor() and self._start_monitor():
            self.engine = "monitor"
            self.mode = "rearm"
        else:
            self._begin_coverage_py()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self.lock.acquire,
                after_in_parent=self.lock.release,
                after_in_child=self._after_fork_in_child,
            )
        self._connect()

    def _wants_monitor(self):
        # COVERAGE_CORE names one of coverage.py's cores: the user asked for
        # coverage.py, as before this engine existed.
        requested = os.environ.get(ENGINE_ENV, "").lower()
        if os.environ.get("COVERAGE_CORE") or requested in ("ctrace", "coverage"):
            return False
        from recplay_line_monitor import LineMonitor

        if not LineMonitor.available():
            if requested == "monitor":
                _warn("the monitor engine needs Python 3.12 or later; using coverage.py")
            return False
        if self.branch and not LineMonitor.branches_available():
            # 3.14 reports branches as BRANCH_LEFT and BRANCH_RIGHT events,
            # which the monitor does not handle yet: the C tracer measures.
            if requested == "monitor":
                _warn("the monitor engine measures branches on Python 3.12 and 3.13 "
                      "only; using coverage.py")
            return False
        return True

    def _start_monitor(self):
        from recplay_line_monitor import LineMonitor

        monitor = LineMonitor(self._is_measured, branch=self.branch)
        try:
            monitor.start()
        except Exception as exc:
            monitor.stop()
            _warn(f"sys.monitoring engine unavailable ({exc}); using coverage.py")
            return False
        self.monitor = monitor
        return True

    def _is_measured(self, path):
        # The Coverage object's include and omit, for the monitor engine.
        return (path.startswith(self.root + os.sep)
                and not any(fnmatch.fnmatch(path, pattern) for pattern in self.omit))

    def _begin_coverage_py(self):
        self.cov.start()
        _skip_hashing(self.cov.get_data())
        self.engine = self._detect_engine()
        forced = os.environ.get(MODE_ENV, "")
        if self.engine == "sysmon":
            self.mode = "restart"
        elif forced != "context" and self._install_sink():
            self.mode = "drain"
        else:
            self.mode = "context"
            self.label = self._next_label()
            self.cov.switch_context(self.label)

    def _detect_engine(self):
        collector = getattr(self.cov, "_collector", None)
        name = ""
        if collector is not None and hasattr(collector, "tracer_name"):
            try:
                name = collector.tracer_name()
            except Exception:
                name = ""
        known = {"CTracer": "ctrace", "PyTracer": "pytrace", "SysMonitor": "sysmon"}
        if name in known:
            return known[name]
        return "sysmon" if sys.version_info >= (3, 14) else "ctrace"

    def _install_sink(self):
        # The tracer flushes its per-file sets into `collector.covdata` and
        # then empties them in place, the way switch_context does, so threads
        # that already exist keep recording. Flushing into a plain in-memory
        # sink instead of coverage.py's SQLite store keeps a snapshot to a
        # few milliseconds; the sink has CoverageData's add_* interface.
        collector = getattr(self.cov, "_collector", None)
        if collector is None or not hasattr(collector, "flush_data") or not hasattr(collector, "covdata"):
            return False
        self.sink = _Sink()
        collector.covdata = self.sink
        return True

    def _next_label(self):
        self.sequence += 1
        return f"recplay-{os.getpid()}-{self.sequence}"

    # Connection -----------------------------------------------------------

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            _warn(f"cannot reach recplay at {self.socket_path} ({exc}); "
                  "this process is not measured")
            if self.monitor is not None:
                self.monitor.stop()
            else:
                self.cov.stop()
            return
        self.sock = sock
        self._send(sock, {
            "type": "hello",
            "version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "language": "python",
            "runtime": sys.version.split()[0],
            "engine": self.engine,
            "mode": self.mode,
            "branch": self.branch,
            "root": self.root,
            "tool": f"coverage.py {self.coverage_version}",
        })
        thread = threading.Thread(
            target=self._serve, args=(sock,), name="recplay-coverage", daemon=True
        )
        thread.start()

    def _after_fork_in_child(self):
        # The parent's connection and its serving thread belong to the
        # parent; this process introduces itself on a connection of its own.
        # Lines the parent ran before the fork but had not yet reported stay
        # in the inherited tracer data and reach recplay with this child's
        # first snapshot (the parent reports them too; recplay takes the union).
        self.lock = threading.Lock()
        inherited = self.sock
        self.sock = None
        if inherited is not None:
            try:
                inherited.close()
            except OSError:
                pass
        try:
            self._connect()
        except Exception as exc:
            _warn(f"could not reconnect after fork: {exc}")

    @staticmethod
    def _send(sock, message):
        sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def _serve(self, sock):
        try:
            reader = sock.makefile("rb")
            for raw in reader:
                reply = self._answer(raw)
                self._send(sock, reply)
        except OSError:
            pass  # recplay went away; the app carries on unmeasured

    def _answer(self, raw):
        try:
            request = json.loads(raw)
        except ValueError as exc:
            return {"type": "error", "id": None, "message": f"request is not JSON: {exc}"}
        if not isinstance(request, dict):
            return {"type": "error", "id": None, "message": "request is not a JSON object"}
        kind = request.get("type")
        request_id = request.get("id")
        try:
            if kind == "snapshot":
                return {"type": "delta", "id": request_id, "files": self.snapshot()}
            if kind == "static":
                files, skipped = self.static()
                return {"type": "static", "id": request_id, "files": files, "skipped": skipped}
            return {"type": "error", "id": request_id,
                    "message": f"unknown request type {kind!r}"}
        except Exception as exc:
            return {"type": "error", "id": request_id,
                    "message": f"{kind} failed: {type(exc).__name__}: {exc}"}

    # Snapshots ------------------------------------------------------------

    def snapshot(self):
        with self.lock:
            if self.mode == "rearm":
                return self.monitor.take()
            if self.mode == "drain":
                return self._snapshot_by_draining()
            if self.mode == "restart":
                return self._snapshot_by_restart()
            return self._snapshot_by_context()

    def _snapshot_by_draining(self):
        self.cov._collector.flush_data()
        return self.sink.take()

    def _snapshot_by_context(self):
        finished = self.label
        self.label = self._next_label()
        self.cov.switch_context(self.label)  # flushes what ran into `finished`
        data = self.cov.get_data()
        try:
            files = self._read_context_fast(data, finished)
        except Exception:
            files = self._read_context_portable(data, finished)
        # Keep the in-memory database to the current interval, so reading
        # costs what the test ran, not what the whole run has. Later flushes
        # go on under the new label.
        data.erase()
        _skip_hashing(data)
        return files

    def _snapshot_by_restart(self):
        self.cov.stop()
        try:
            data = self.cov.get_data()
            files = self._read_all(data, data.measured_files())
            self.cov.erase()
        finally:
            self.cov.start()
        return files

    def _read_context_fast(self, data, label):
        # One query for every file of one context, instead of a query per
        # measured file; relies on coverage.py's documented SQLite schema.
        from coverage.numbits import numbits_to_nums

        files = {}
        with data._connect() as con:
            row = con.execute_one("select id from context where context = ?", (label,))
            if row is None:
                return files
            context_id = row[0]
            if data.has_arcs():
                query = ("select file.path, arc.fromno, arc.tono from arc "
                         "join file on file.id = arc.file_id where arc.context_id = ?")
                with con.execute(query, (context_id,)) as cursor:
                    for path, start, end in cursor:
                        entry = files.setdefault(path, {"lines": set(), "arcs": []})
                        entry["arcs"].append([start, end])
                        if start > 0:
                            entry["lines"].add(start)
                        if end > 0:
                            entry["lines"].add(end)
            else:
                query = ("select file.path, line_bits.numbits from line_bits "
                         "join file on file.id = line_bits.file_id "
                         "where line_bits.context_id = ?")
                with con.execute(query, (context_id,)) as cursor:
                    for path, bits in cursor:
                        entry = files.setdefault(path, {"lines": set()})
                        entry["lines"].update(numbits_to_nums(bits))
        for entry in files.values():
            entry["lines"] = sorted(entry["lines"])
        return files

    def _read_context_portable(self, data, label):
        data.set_query_contexts(["^" + re.escape(label) + "$"])
        try:
            return self._read_all(data, data.measured_files())
        finally:
            data.set_query_contexts(None)

    @staticmethod
    def _read_all(data, paths):
        files = {}
        has_arcs = data.has_arcs()
        for path in paths:
            lines = data.lines(path) or []
            if not lines:
                continue
            entry = {"lines": sorted(lines)}
            if has_arcs:
                entry["arcs"] = [list(arc) for arc in sorted(data.arcs(path) or [])]
            files[path] = entry
        return files

    # Static description ---------------------------------------------------

    def static(self):
        from coverage.python import PythonFileReporter

        files = {}
        skipped = {}
        for path in self._source_files():
            try:
                reporter = PythonFileReporter(path, self.cov)
                statements = reporter.lines()
                entry = {"lines": sorted(statements)}
                multiline = {str(line): first for line, first in reporter.multiline_map().items()
                             if line != first}
                if multiline:
                    entry["multiline"] = multiline
                if self.branch:
                    exits = reporter.exit_counts()
                    branch_lines = {line for line, count in exits.items() if count > 1}
                    branches = {}
                    for start, end in sorted(reporter.arcs()):
                        if start in branch_lines:
                            branches.setdefault(str(start), []).append(end)
                    if branches:
                        entry["branches"] = branches
                files[path] = entry
            except Exception as exc:
                skipped[path] = f"{type(exc).__name__}: {exc}"
        return files, skipped

    def _source_files(self):
        for directory, subdirs, names in os.walk(self.root):
            subdirs[:] = sorted(
                d for d in subdirs
                if d not in SKIPPED_DIRS
                and not d.startswith(".")
                and not os.path.exists(os.path.join(directory, d, "pyvenv.cfg"))
            )
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                path = os.path.realpath(os.path.join(directory, name))
                if any(fnmatch.fnmatch(path, pattern) for pattern in self.omit):
                    continue
                yield path
