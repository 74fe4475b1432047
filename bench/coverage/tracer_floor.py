"""The cost of coverage.py's tracer on code it does not measure.

Runs one pure-Python loop three ways in this interpreter: without
coverage, with coverage.py started on another directory (the loop is not
measured, as Django's own code is not when recplay measures an app), and
with coverage.py measuring the loop (lines and arcs). The ratios are the
floor under any per-test coverage built on this tracer.

Usage: python bench/coverage/tracer_floor.py   (needs coverage installed)
"""

import os
import sys
import tempfile
import time

import coverage

WORK = '''
def leaf(x):
    y = x + 1
    return y * 2


def busy(n):
    total = 0
    for i in range(n):
        total += leaf(i)
        if total > 10**9:
            total = 0
    return total
'''


def best_of(runs, fn):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "lib")
        elsewhere = os.path.join(tmp, "app")
        os.makedirs(lib)
        os.makedirs(elsewhere)
        with open(os.path.join(lib, "floor_work.py"), "w") as f:
            f.write(WORK)
        sys.path.insert(0, lib)
        import floor_work

        def loop():
            floor_work.busy(300_000)

        off = best_of(5, loop)
        timings = {}
        for name, include, branch in (
            ("on, loop not measured", elsewhere, False),
            ("on, loop measured", lib, True),
        ):
            cov = coverage.Coverage(
                data_file=None,
                include=[os.path.join(include, "*")],
                branch=branch,
                config_file=False,
            )
            cov.start()
            timings[name] = best_of(5, loop)
            cov.stop()
            # Which tracer ran (CTracer, PyTracer, SysMonitor): not public
            # API, so only when this coverage.py has it.
            collector = getattr(cov, "_collector", None)
            tracer = getattr(collector, "tracer_name", lambda: "tracer unknown")()

    print(
        f"Python {sys.version.split()[0]}, coverage.py {coverage.__version__} ({tracer})"
    )
    print(f"{'coverage off:':<34}{off * 1e3:7.1f} ms")
    for name, seconds in timings.items():
        label = f"coverage {name}:"
        print(f"{label:<34}{seconds * 1e3:7.1f} ms  ({seconds / off:.2f}x)")


if __name__ == "__main__":
    main()
