"""What one line costs the agent's "monitor" engine (sys.monitoring).

The engine's price per test is one Python callback per distinct measured
line the test runs, plus the snapshot that reads them and re-arms them.
This script measures both in this interpreter (Python 3.12+):

- per event: generated functions of ten one-line statements each, N lines
  in all, run once with their LINE events armed (each line fires, is
  recorded and disabled) and once unmeasured; the difference over N is
  the cost of one event (small functions, as an app has: CPython finds
  the line number of an event in a function with long line jumps by
  scanning its line table, so one huge function would measure that);
- after DISABLE: the same functions run again before re-arming, which
  must cost what the unmeasured run does;
- a snapshot (take + restart_events) of N recorded lines;
- for comparison, coverage.py's C tracer on the same function, per line;
- branch mode: generated functions of five `if` statements each (ten
  lines, B branches in all, each taken one way), armed with LINE and
  BRANCH events: the first run (lines and branches report), a second run
  before re-arming (a branch seen one way only reports each time it runs:
  before Python 3.14 disabling it would silence its other direction too),
  the snapshot with its mapping to arcs, and coverage.py's C tracer with
  branches on the same functions;
- `async for` in branch mode: an exception caught in unmeasured code, before
  and after measured code with an `async for` is armed (from then the
  process-wide EXCEPTION_HANDLED event is on: one callback per caught
  exception, anywhere).

Usage: python bench/coverage/monitor_callback.py [N]   (coverage optional)
"""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "src", "coverage", "agent"))

from recplay_line_monitor import LineMonitor  # noqa: E402

ROUNDS = 30


def make_functions(directory, lines):
    path = os.path.join(directory, "generated.py")
    source = []
    for n in range(lines // 10):
        source.append(f"def f{n}(x):\n")
        source.extend(f"    x = x + {i}\n" for i in range(9))
        source.append("    return x\n")
    with open(path, "w") as f:
        f.write("".join(source))
    namespace = {}
    exec(compile(open(path).read(), path, "exec"), namespace)
    functions = [namespace[f"f{n}"] for n in range(lines // 10)]

    def work():
        for function in functions:
            function(0)

    return path, functions, work


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    directory = os.path.realpath(tempfile.mkdtemp())
    path, functions, work = make_functions(directory, lines)

    plain = median([timed(work) for _ in range(ROUNDS)])

    monitor = LineMonitor(lambda p: p == path)
    monitor.start()
    for function in functions:
        monitor.arm(function.__code__)
    armed, disabled, snapshots = [], [], []
    for _ in range(ROUNDS):
        armed.append(timed(work))
        disabled.append(timed(work))
        start = time.perf_counter()
        files = monitor.take()
        snapshots.append(time.perf_counter() - start)
        assert len(files[path]["lines"]) == lines, "every line reported once"
    monitor.stop()

    print(f"Python {sys.version.split()[0]}, {lines} distinct lines, median of {ROUNDS}")
    print(f"  unmeasured run          {plain * 1e3:8.2f} ms")
    print(f"  armed (first run)       {median(armed) * 1e3:8.2f} ms   "
          f"{(median(armed) - plain) / lines * 1e9:6.0f} ns per line event")
    print(f"  after DISABLE           {median(disabled) * 1e3:8.2f} ms")
    print(f"  snapshot (take+restart) {median(snapshots) * 1e3:8.2f} ms   "
          f"{median(snapshots) / lines * 1e9:6.0f} ns per line")

    try:
        import coverage
    except ImportError:
        return
    cov = coverage.Coverage(data_file=None, include=[path], config_file=False)
    try:
        cov.set_option("run:core", "ctrace")
    except Exception:
        pass
    cov.start()
    traced = median([timed(work) for _ in range(ROUNDS)])
    cov.stop()
    print(f"  coverage.py C tracer    {traced * 1e3:8.2f} ms   "
          f"{(traced - plain) / lines * 1e9:6.0f} ns per line, every run")
    branches(directory, lines)
    caught_exceptions(directory, lines)


def make_branchy(directory, lines):
    path = os.path.join(directory, "branchy.py")
    source = []
    for n in range(lines // 10):
        source.append(f"def b{n}(x):\n")
        for i in range(5):
            source.append(f"    if x > {i}:\n        x = x - 1\n")
        source.append("    return x\n")
    with open(path, "w") as f:
        f.write("".join(source))
    namespace = {}
    exec(compile(open(path).read(), path, "exec"), namespace)
    functions = [namespace[f"b{n}"] for n in range(lines // 10)]

    def work():
        for function in functions:
            function(3)

    return path, functions, work


def branches(directory, lines):
    path, functions, work = make_branchy(directory, lines)
    count = len(functions) * 5
    plain = median([timed(work) for _ in range(ROUNDS)])
    monitor = LineMonitor(lambda p: p == path, branch=True)
    monitor.start()
    for function in functions:
        monitor.arm(function.__code__)
    first, second, snapshots = [], [], []
    for _ in range(ROUNDS):
        first.append(timed(work))
        second.append(timed(work))
        start = time.perf_counter()
        files = monitor.take()
        snapshots.append(time.perf_counter() - start)
        assert len(files[path]["arcs"]) == count, "one arc per branch"
    monitor.stop()
    line_events = lines - lines // 10 * 2  # `if`s, the bodies of x > 0..2, returns
    print(f"branch mode, {count} branches ({count} BRANCH events a run), median of {ROUNDS}")
    print(f"  unmeasured run          {plain * 1e3:8.2f} ms")
    print(f"  armed (first run)       {median(first) * 1e3:8.2f} ms   "
          f"{(median(first) - plain) / (count + line_events) * 1e9:6.0f} ns per event")
    print(f"  second run, no re-arm   {median(second) * 1e3:8.2f} ms   "
          f"{(median(second) - plain) / count * 1e9:6.0f} ns per branch event")
    print(f"  snapshot (take+restart) {median(snapshots) * 1e3:8.2f} ms   "
          f"{median(snapshots) / count * 1e9:6.0f} ns per branch")
    try:
        import coverage
    except ImportError:
        return
    cov = coverage.Coverage(data_file=None, include=[path], config_file=False, branch=True)
    try:
        cov.set_option("run:core", "ctrace")
    except Exception:
        pass
    cov.start()
    traced = median([timed(work) for _ in range(ROUNDS)])
    cov.stop()
    print(f"  coverage.py C tracer    {traced * 1e3:8.2f} ms   "
          f"{(traced - plain) / (count + line_events) * 1e9:6.0f} ns per line, every run")


def caught_exceptions(directory, count):
    path = os.path.join(directory, "looping.py")
    with open(path, "w") as f:
        f.write("async def drain(source):\n"
                "    async for item in source:\n"
                "        pass\n")
    namespace = {}
    exec(compile(open(path).read(), path, "exec"), namespace)

    def work():
        # Unmeasured: a KeyError raised and caught in Python code.
        lookup = {}
        for key in range(count):
            try:
                lookup[key]
            except KeyError:
                pass

    before = median([timed(work) for _ in range(ROUNDS)])
    monitor = LineMonitor(lambda p: p == path, branch=True)
    monitor.start()
    monitor.arm(namespace["drain"].__code__)
    after = median([timed(work) for _ in range(ROUNDS)])
    monitor.stop()
    print(f"async for in branch mode, {count} exceptions caught in unmeasured code, "
          f"median of {ROUNDS}")
    print(f"  no async for armed      {before * 1e3:8.2f} ms")
    print(f"  an async for armed      {after * 1e3:8.2f} ms   "
          f"{(after - before) / count * 1e9:6.0f} ns per caught exception")


if __name__ == "__main__":
    main()
