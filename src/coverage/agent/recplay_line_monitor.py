"""Per-test line coverage on sys.monitoring (Python 3.12+), the agent's
"monitor" engine.

A tracer (coverage.py's C tracer) pays on every call and line of the whole
process, Django and the standard library included, measured or not. Here
LINE events are enabled locally, on the code objects of measured files
only, so everything else runs at full speed. A line reports once, is
recorded and returns DISABLE, so a function that runs again in the same test
costs nothing more; a snapshot takes what was recorded and calls
restart_events(), which re-arms exactly the lines that reported. The cost
per test is then one callback per distinct measured line the test ran.

Code objects are found as they are created: the source and bytecode loaders'
get_code is wrapped, so every module imported afterwards is armed before it
runs, with every code object nested in its constants (functions, classes,
lambdas, comprehensions). Functions that already exist when the monitor
starts, and those of a script run as `python script.py` (compiled by the
interpreter itself, not by a loader), are found by walking the garbage
collector's objects at start and once more at the first snapshot; the
script's module-level lines run before that are not seen. Code compiled from
a measured file later by other means (exec of compile()) is not measured.

restart_events() re-arms every tool's disabled events, not only ours: a
debugger or coverage.py's own sys.monitoring core running in the same
process sees the lines it had disabled fire again after each snapshot. Both
only record them again, so their results stay the same; they run slower.

Branch mode (RECPLAY_COVERAGE_BRANCH on, the agent's default; Python 3.12
and 3.13): BRANCH events are enabled with LINE on the same code objects.
A branch records (code, source offset, destination offset); before 3.14
DISABLE silences both directions of a branch instruction, so it is returned
only once the second direction has reported, and a branch taken one way
only reports each time it runs. A snapshot maps each record to
coverage.py's arc: the branch instruction's line to the first other line the
bytecode reaches from the destination, following unconditional jumps, or to
-co_firstlineno if the code object returns first; when another conditional
jump on the same line comes first (`a and b or c`) that jump's own event
decides. recplay counts the arcs that coverage.py's static analysis (the
agent's `static` answer) names as branches.

`async for` has no branch instruction: its body is entered by falling
through from the header's await, and the loop ends when __anext__() raises
StopAsyncIteration into the loop's END_ASYNC_FOR handler. The entry arc is
taken from the LINE event of the body's first line, which nothing else
reaches; the exit arc from an EXCEPTION_HANDLED event at an END_ASYNC_FOR
offset, mapped like a branch from there. Before 3.14 EXCEPTION_HANDLED can
only be enabled for the whole process, so it is switched on only once
measured code has an `async for`; from then every exception caught anywhere
costs one callback (about 75 ns) that returns at once unless it is a
StopAsyncIteration caught in a measured file.
"""

import dis
import gc
import os
import sys
import types

# Tried in order; 0-2 and 5 are CPython's debugger, coverage, profiler and
# optimizer ids, left to the tools they are named after.
TOOL_IDS = (4, 3)
TOOL_NAME = "recplay-coverage"


_RETURNS = {"RETURN_VALUE", "RETURN_CONST"}
_JUMPS = {"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP",
          "JUMP_NO_INTERRUPT"}
# Conditional jumps, loops, raises, yields: the walk stops, a later event
# (or none, for an exception) decides.
_STOPS = set(dis.hasjrel) | set(getattr(dis, "hasjabs", [])) | {
    dis.opmap[name] for name in ("RAISE_VARARGS", "RERAISE", "YIELD_VALUE",
                                 "END_ASYNC_FOR", "SEND") if name in dis.opmap}
# What stores a loop's target, before its body: a target spread over lines
# (`for (a,` then `b) in ...`) puts its stores on the header's later lines,
# which are not the body coverage.py's arc goes to.
_TARGET_STORES = {dis.opmap[name] for name in (
    "UNPACK_SEQUENCE", "UNPACK_EX", "STORE_FAST", "STORE_NAME", "STORE_GLOBAL",
    "STORE_DEREF", "STORE_FAST_STORE_FAST") if name in dis.opmap}
_LOOP_HEADS = {"FOR_ITER", "GET_ANEXT"}
# `async for` exists only in coroutines and async generators (async
# generator expressions included); other code objects are not scanned.
_ASYNC_FLAGS = 0x80 | 0x200  # CO_COROUTINE | CO_ASYNC_GENERATOR
_END_ASYNC_FOR = bytes([dis.opmap["END_ASYNC_FOR"]])


class LineMonitor:
    """Records the measured lines that ran since the previous take()."""

    def __init__(self, is_measured, branch=False):
        # is_measured(canonical path) -> bool, asked once per file name.
        self._is_measured = is_measured
        self._branch = branch
        self._paths = {}  # co_filename -> canonical path, or None if not measured
        self._hits = []
        self._branches = []  # (code, src offset, dest offset)
        self._first_dest = {}  # (id(code), src offset) -> first dest seen this test
        self._layouts = {}  # code -> (offset -> instruction)
        self._next = {}  # (code, offset) -> offset of the next instruction
        self._arcs = {}  # (id(code), src, dest) -> (code, arc or None)
        self._loop_exits = []  # (code, END_ASYNC_FOR offset)
        self._async_loops = {}  # id(code) -> [code, {body line: entry arc} or None]
        self._tool = None
        self._walked_again = False
        self._patched = []

    @staticmethod
    def available():
        return sys.version_info >= (3, 12) and hasattr(sys, "monitoring")

    @staticmethod
    def branches_available():
        # 3.14 replaced BRANCH with BRANCH_LEFT and BRANCH_RIGHT; not handled.
        return LineMonitor.available() and sys.version_info < (3, 14)

    def start(self):
        """Claims a tool id and arms what exists; raises RuntimeError when
        every id this monitor may use is taken."""
        monitoring = sys.monitoring
        for tool in TOOL_IDS:
            try:
                monitoring.use_tool_id(tool, TOOL_NAME)
            except ValueError:
                continue
            self._tool = tool
            break
        else:
            users = ", ".join(f"{t}: {monitoring.get_tool(t)}" for t in TOOL_IDS)
            raise RuntimeError(f"no free sys.monitoring tool id ({users})")
        monitoring.register_callback(self._tool, monitoring.events.LINE, self._callback())
        if self._branch:
            monitoring.register_callback(
                self._tool, monitoring.events.BRANCH, self._branch_callback())
            # Switched on by arm() once measured code has an `async for`.
            monitoring.register_callback(
                self._tool, monitoring.events.EXCEPTION_HANDLED, self._loop_exit_callback())
        self._wrap_loaders()
        self._walk_existing()

    def stop(self):
        for cls, original in self._patched:
            cls.get_code = original
        self._patched = []
        if self._tool is not None:
            monitoring = sys.monitoring
            monitoring.register_callback(self._tool, monitoring.events.LINE, None)
            if self._branch:
                monitoring.set_events(self._tool, 0)
                monitoring.register_callback(self._tool, monitoring.events.BRANCH, None)
                monitoring.register_callback(
                    self._tool, monitoring.events.EXCEPTION_HANDLED, None)
            monitoring.free_tool_id(self._tool)
            self._tool = None

    def _callback(self):
        # The whole per-event cost: one append of a tuple. Defaults bind the
        # names as locals, the cheapest lookup Python has.
        def on_line(code, line, append=self._hits.append, disable=sys.monitoring.DISABLE):
            append((code, line))
            return disable

        return on_line

    def _branch_callback(self):
        # Before 3.14, DISABLE on a BRANCH event silences both directions of
        # the instruction: it is returned only once both have reported, so a
        # branch taken one way only reports every time it runs (measured code
        # only).
        # Keyed by id(code): hashing a code object hashes its bytecode and
        # constants. The id is stable while the key lives, since the first
        # event's record holds the code object until the snapshot clears both.
        def on_branch(code, src, dest, append=self._branches.append,
                      first=self._first_dest, disable=sys.monitoring.DISABLE):
            key = (id(code), src)
            seen = first.get(key)
            if seen is None:
                first[key] = dest
                append((code, src, dest))
                return None
            if seen == dest:
                return None
            append((code, src, dest))
            return disable

        return on_branch

    def _loop_exit_callback(self):
        # An `async for` ends when its awaited __anext__() raises
        # StopAsyncIteration, caught by the loop's END_ASYNC_FOR handler: no
        # branch instruction is involved, so the exit arc is seen here.
        # EXCEPTION_HANDLED cannot be enabled per code object before 3.14,
        # so this sees every exception caught anywhere in the process; it
        # is switched on only once measured code has an `async for`, and
        # anything else costs one isinstance(). Whether the handler is an
        # END_ASYNC_FOR is checked at the snapshot.
        def on_handled(code, offset, exc, append=self._loop_exits.append,
                       paths=self._paths, stop=StopAsyncIteration):
            if isinstance(exc, stop) and paths.get(code.co_filename):
                append((code, offset))

        return on_handled

    def take(self):
        """The lines recorded since the previous take, per canonical path,
        in the agent's `delta` form; re-arms them for the next test."""
        if not self._walked_again:
            # Catches what start() could not see yet (a script's functions).
            self._walked_again = True
            self._walk_existing()
        hits = self._hits
        taken = hits[:]
        # Other threads may have appended since the copy; they appended at
        # the end, so this removes exactly what was copied.
        del hits[:len(taken)]
        # After taking, never before: a line that ran in between would be
        # disabled with nobody to report it for the next test.
        branches = []
        exits = []
        if self._branch:
            record = self._branches
            branches = record[:]
            del record[:len(branches)]
            self._first_dest.clear()
            record = self._loop_exits
            exits = record[:]
            del record[:len(exits)]
        sys.monitoring.restart_events()
        lines = {}
        for code, line in taken:
            if line is not None:
                lines.setdefault(code.co_filename, set()).add(line)
        arcs = {}
        known_arcs = self._arcs
        for code, src, dest in branches:
            key = (id(code), src, dest)
            try:
                arc = known_arcs[key][1]
            except KeyError:
                # The code object is kept with its arc, so its id stays its own.
                arc = self._arc(code, src, dest)
                known_arcs[key] = (code, arc)
            if arc is not None:
                arcs.setdefault(code.co_filename, set()).add(arc)
        for code, offset in exits:
            key = (id(code), offset, None)
            try:
                arc = known_arcs[key][1]
            except KeyError:
                arc = self._loop_exit_arc(code, offset)
                known_arcs[key] = (code, arc)
            if arc is not None:
                arcs.setdefault(code.co_filename, set()).add(arc)
        if self._async_loops:
            self._add_loop_entries(taken, arcs)
        files = {}
        for filename in set(lines) | set(arcs):
            path = self._paths.get(filename)
            if path:
                entry = files.setdefault(path, {"lines": []})
                entry["lines"] = sorted(set(entry["lines"]) | lines.get(filename, set()))
                if self._branch:
                    known = {tuple(a) for a in entry.get("arcs", [])}
                    entry["arcs"] = [list(a) for a in sorted(known | arcs.get(filename, set()))]
        return files

    # Branches to arcs -------------------------------------------------------

    def _layout(self, code):
        layout = self._layouts.get(code)
        if layout is None:
            instructions = list(dis.get_instructions(code))
            layout = {ins.offset: ins for ins in instructions}
            for ins, after in zip(instructions, instructions[1:] + [None]):
                self._next[(code, ins.offset)] = after.offset if after else None
            self._layouts[code] = layout
        return layout

    def _arc(self, code, src, dest):
        """coverage.py's arc for a branch from offset `src` to `dest`: the
        branch's line to the next other line a tracer would see, or to
        -co_firstlineno when the code object returns first. None when
        another branch on the same line decides (short-circuit operators)."""
        layout = self._layout(code)
        origin = layout.get(src)
        if origin is None:
            return None
        line = origin.positions.lineno
        if line is None:
            return None
        offset = dest
        if origin.opname in _LOOP_HEADS:
            # Into a loop's body: its target's stores belong to the header.
            while offset in layout and layout[offset].opcode in _TARGET_STORES:
                offset = self._next.get((code, offset))
        for _ in range(len(layout) + 1):
            ins = layout.get(offset)
            if ins is None:
                return None
            here = ins.positions.lineno
            if here is not None and here != line:
                return (line, here)
            name = ins.opname
            if name in _RETURNS:
                return (line, -code.co_firstlineno)
            if name in _JUMPS:
                offset = ins.argval
                continue
            if ins.opcode in _STOPS:
                return None
            offset = self._next.get((code, offset))
            if offset is None:
                return None
        return None

    def _loop_exit_arc(self, code, offset):
        """The exit arc of the `async for` whose END_ASYNC_FOR is at
        `offset`: its line to the line the loop continues at, as for a
        branch leaving the loop. None for any other handler."""
        ins = self._layout(code).get(offset)
        if ins is None or ins.opname != "END_ASYNC_FOR":
            return None
        after = self._next.get((code, offset))
        return None if after is None else self._arc(code, offset, after)

    def _add_loop_entries(self, taken, arcs):
        # An `async for` enters its body by falling through from the end of
        # its header's await, not by a branch. The body's first line can be
        # reached only from there, so its LINE event stands for the arc.
        loops = self._async_loops
        for code, line in taken:
            loop = loops.get(id(code))
            if loop is None:
                continue
            entries = loop[1]
            if entries is None:
                entries = loop[1] = self._loop_entries(code)
            arc = entries.get(line)
            if arc is not None:
                arcs.setdefault(code.co_filename, set()).add(arc)

    def _loop_entries(self, code):
        """{first body line: (header line, first body line)} for each
        `async for` in `code`. GET_ANEXT starts a header; the body starts
        after the END_SEND that ends the header's await (and the target's
        stores). A body on the header's own line has no arc of its own."""
        layout = self._layout(code)
        entries = {}
        header = None
        for offset, ins in layout.items():
            if ins.opname == "GET_ANEXT":
                header = offset
            elif ins.opname == "END_SEND" and header is not None:
                after = self._next.get((code, offset))
                arc = None if after is None else self._arc(code, header, after)
                if arc is not None and arc[1] > 0:
                    entries[arc[1]] = arc
                header = None
        return entries

    # Finding code objects ---------------------------------------------------

    def _measured_path(self, filename):
        try:
            return self._paths[filename]
        except KeyError:
            pass
        path = None
        # "<string>", "<frozen ...>" and the like are not files.
        if filename and not filename.startswith("<"):
            canonical = os.path.realpath(os.path.abspath(filename))
            if self._is_measured(canonical):
                path = canonical
        self._paths[filename] = path
        return path

    def arm(self, code):
        """Enables LINE events on `code` and every code object nested in it,
        if its file is measured."""
        if self._tool is None or not self._measured_path(code.co_filename):
            return
        set_local_events = sys.monitoring.set_local_events
        line = sys.monitoring.events.LINE
        if self._branch:
            line |= sys.monitoring.events.BRANCH
        stack = [code]
        while stack:
            current = stack.pop()
            set_local_events(self._tool, current, line)
            if self._branch and current.co_flags & _ASYNC_FLAGS:
                self._note_async_loops(current)
            stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))

    def _note_async_loops(self, code):
        # co_code holds one opcode every two bytes (arguments and inline
        # caches in between), so the even bytes are the opcodes.
        if id(code) in self._async_loops or _END_ASYNC_FOR not in code.co_code[::2]:
            return
        # The code object is kept with its entry, so its id stays its own.
        self._async_loops[id(code)] = [code, None]
        monitoring = sys.monitoring
        handled = monitoring.events.EXCEPTION_HANDLED
        events = monitoring.get_events(self._tool)
        if not events & handled:
            monitoring.set_events(self._tool, events | handled)

    def _wrap_loaders(self):
        # SourceFileLoader inherits get_code from SourceLoader; bytecode-only
        # modules have their own. exec_module asks self.get_code, so every
        # module these loaders import passes through here before it runs.
        from importlib import _bootstrap_external as external

        for cls in (external.SourceLoader, external.SourcelessFileLoader):
            original = cls.__dict__.get("get_code")
            if original is None:
                continue
            cls.get_code = self._wrapped_get_code(original)
            self._patched.append((cls, original))

    def _wrapped_get_code(self, original):
        arm = self.arm

        def get_code(loader, fullname):
            code = original(loader, fullname)
            if code is not None:
                try:
                    arm(code)
                except Exception:
                    pass  # never fail an import because coverage could not arm it
            return code

        return get_code

    def _walk_existing(self):
        for obj in gc.get_objects():
            if isinstance(obj, types.FunctionType):
                code = getattr(obj, "__code__", None)
                if code is not None:
                    self.arm(code)
