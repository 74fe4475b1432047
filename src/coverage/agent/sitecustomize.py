"""Starts the recplay coverage agent when RECPLAY_COVERAGE_SOCKET is set.

recplay puts this directory first on PYTHONPATH for the app it starts, so
every interpreter the app runs (the gunicorn master and, through fork, each
worker) loads the agent before any application code. Without the variable
nothing happens. A sitecustomize the app ships itself is still imported.
"""

import os
import sys


def _start_agent():
    if not os.environ.get("RECPLAY_COVERAGE_SOCKET"):
        return
    try:
        import recplay_coverage_agent

        recplay_coverage_agent.activate()
    except Exception as exc:  # never break the app because coverage failed
        sys.stderr.write(f"recplay coverage: agent not started: {exc}\n")


def _chain_to_app_sitecustomize():
    # This module shadows any other sitecustomize on the path; load that one
    # too, so the app behaves as it does without recplay.
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.get(__name__)
    saved_path = list(sys.path)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        del sys.modules[__name__]
        import importlib

        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    except Exception as exc:
        sys.stderr.write(f"recplay coverage: the app's sitecustomize failed: {exc}\n")
    finally:
        sys.path[:] = saved_path
        if ours is not None:
            sys.modules[__name__] = ours


_start_agent()
_chain_to_app_sitecustomize()
