"""Mutation testing of the safety-critical modules, each against the tests that cover it.

``make mutation`` runs this with the mutmut pinned in the ``mutation`` extra. For each module
in :data:`MODULES` (one at a time) it copies the package and the tests to
``build/mutation/<name>/``, writes a ``[tool.mutmut]`` section that mutates that one module
and selects its tests, runs ``mutmut run --max-children N`` there, and reads the outcome of
every mutant. Then it writes ``docs/mutation.md``: the score of each module and every mutant
that was not killed.

The score is killed / (mutants - message-only - equivalent); a timeout counts as killed (the
mutant hung the tests), a mutant no selected test reaches counts as survived. Two kinds of
mutant are excluded from it, both reproducibly:

* **message-only**, decided here from the code (:func:`message_only`): every change the
  mutant makes lies in the value, ``accepted`` or ``problem`` of a ``ValidationError(...)``
  (its ``field`` is what the tests assert, so a mutated field is never excluded), in the
  value assigned to a local named ``accepted`` or ``problem``, in the arguments of a
  logging call, or in the message of a built-in exception or of any ``...Error(message)``
  built from its message alone;
* **equivalent**, listed by name with a reason in ``tools/mutation_allow.txt``.

That file also gives the reason of each survivor left standing (``survivor``). Mutant names
are mutmut's (``module.x_function__mutmut_N``): stable for a given mutmut version and source,
so a change to a module renumbers its mutants and the file is re-checked by the next run
(an allowlisted name that no longer survives is reported as stale).

Usage: ``python tools/mutation.py [--only NAME ...] [--max-children N] [--report-only]``.
``--only`` runs some modules and keeps the last results of the others (build/mutation/
results.json) in the report.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import itertools
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
RESULTS = WORK / "results.json"
ALLOW = ROOT / "tools" / "mutation_allow.txt"
REPORT = ROOT / "docs" / "mutation.md"
PACKAGE = "airflow_provider_wfdlq"


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    tests: tuple[str, ...]


_SAFETY_TESTS = (
    "tests/recovery/test_safety_arithmetic.py",
    "tests/recovery/test_policies.py",
    "tests/recovery/test_policy_regressions.py",
)
_ENGINE_TESTS = (
    "tests/recovery/test_plan_listing_rules.py",
    "tests/recovery/test_ledger_rules.py",
    "tests/recovery/test_redrive.py",
    "tests/recovery/test_invariants.py",
    "tests/recovery/test_policies.py",
    "tests/recovery/test_policy_regressions.py",
    "tests/recovery/test_idset.py",
    "tests/recovery/test_safety_arithmetic.py",
    "tests/recovery/test_in_flight.py",
)

#: In the order they run: the most important first.
MODULES: tuple[Module, ...] = (
    Module("safety", "recovery/safety.py", _SAFETY_TESTS),
    Module("gate", "recovery/gate.py", _SAFETY_TESTS),
    Module(
        "selection",
        "recovery/selection.py",
        ("tests/recovery/test_selection_rules.py", "tests/recovery/test_policies.py"),
    ),
    Module("validation", "client/validation.py", ("tests/client",)),
    Module("retry", "client/retry.py", ("tests/client",)),
    Module("plan", "recovery/plan.py", _ENGINE_TESTS),
    Module("checkpoint", "recovery/checkpoint.py", _ENGINE_TESTS),
    Module("idset", "recovery/idset.py", _ENGINE_TESTS),
    Module(
        "tries",
        "recovery/tries.py",
        ("tests/recovery/test_tries_rules.py", "tests/recovery/test_ledger_rules.py"),
    ),
    Module("actor", "recovery/actor.py", ("tests/recovery/test_actor_rules.py", *_ENGINE_TESTS)),
    Module(
        "inflight",
        "recovery/inflight.py",
        ("tests/recovery/test_inflight_rules.py", *_ENGINE_TESTS),
    ),
    Module(
        "actions",
        "recovery/actions.py",
        (
            "tests/recovery/test_actions_rules.py",
            "tests/recovery/test_housekeeping.py",
            "tests/recovery/test_morning_housekeeping.py",
        ),
    ),
)

KILLED = {1, 3, 36, -24, 24, 152, 255, 37}  # failed, pytest error, timeouts, type check
SURVIVED = {0, 5, 33}  # passed, or no selected test reached the mutant


# --- running ---------------------------------------------------------------------------------


def _mutmut_section(module: Module) -> str:
    def toml_list(items: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        f'source_paths = ["{PACKAGE}"]\n'
        f"only_mutate = {toml_list([f'{PACKAGE}/{module.path}'])}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(module.tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )


def _prepare(module: Module) -> Path:
    where = WORK / module.name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in (PACKAGE, "tests", "example_dags"):
        shutil.copytree(ROOT / name, where / name, ignore=ignore)
    shutil.copy(ROOT / "README.md", where / "README.md")
    pyproject = (ROOT / "pyproject.toml").read_text()
    (where / "pyproject.toml").write_text(pyproject + _mutmut_section(module))
    return where


def _run(module: Module, max_children: int) -> dict[str, Any]:
    where = _prepare(module)
    mutmut = Path(sys.executable).parent / "mutmut"
    started = time.monotonic()
    print(f"== {module.name}: {module.path} against {' '.join(module.tests)}", flush=True)
    with open(where / "mutmut.log", "w") as log:
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children)],
            cwd=where,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return _collect(module, round(time.monotonic() - started))


def _collect(module: Module, seconds: int) -> dict[str, Any]:
    """The outcome of every mutant of a finished (or interrupted) run in its work dir."""
    where = WORK / module.name
    meta = where / "mutants" / PACKAGE / (module.path + ".meta")
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    standing = [name for name, code in codes.items() if code not in KILLED]
    found = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--inspect", *standing],
        cwd=where,
        capture_output=True,
        text=True,
        check=True,
    )
    inspected = json.loads(found.stdout) if standing else {}
    mutants = []
    for name, code in sorted(codes.items(), key=lambda kv: _order(kv[0])):
        diff, before, after = inspected.get(name, ("", "", ""))
        mutants.append({"name": name, "code": code, "diff": diff, "before": before, "after": after})
    return {
        "module": module.path,
        "tests": list(module.tests),
        "seconds": seconds,
        "measured": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mutants": mutants,
    }


def _order(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def inspect(names: list[str]) -> dict[str, tuple[str, str, str]]:
    """Each mutant's changed lines, and its function before and after (run in the work dir)."""
    import libcst as cst
    from mutmut.mutation.diff_apply import (
        find_mutant,
        get_diff_for_mutant,
        read_functions_from_index,
        read_mutant_function,
        read_mutants_module,
        read_original_function,
    )

    found = {}
    for name in names:
        path = find_mutant(name).path
        diff = get_diff_for_mutant(name, path=path)
        functions = read_functions_from_index(name, path)
        if functions is None:
            module = read_mutants_module(path)
            functions = (read_original_function(module, name), read_mutant_function(module, name))
        before, after = (cst.Module([function]).code for function in functions)
        changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
        found[name] = ("\n".join(changed), before, after)
    return found


# --- classifying ----------------------------------------------------------------------------

_LOGGERS = {"log", "logger", "logging"}
_MESSAGE_NAMES = {"accepted", "problem"}  # locals that become a ValidationError's text
_BUILTIN_ERRORS = {"ValueError", "TypeError", "RuntimeError", "KeyError", "AssertionError"}


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return f"{owner}.{func.attr}"
    return ""


def _in_message(path: list[ast.AST]) -> bool:
    """Is the node at the end of ``path`` (root first) part of a message?"""
    for parent, child in itertools.pairwise(path):
        if isinstance(parent, ast.Assign) and child is parent.value:
            names = {t.id for t in parent.targets if isinstance(t, ast.Name)}
            if names & _MESSAGE_NAMES:
                return True
        if not isinstance(parent, ast.Call):
            continue
        name = _callee(parent)
        if name == "ValidationError":
            keywords = {k.arg: k.value for k in parent.keywords}
            in_args = child in parent.args[1:]
            in_keywords = any(child is keywords.get(k) for k in ("value", "accepted", "problem"))
            if in_args or in_keywords:
                return True
        if name.partition(".")[0] in _LOGGERS and (
            child in parent.args or child in [k.value for k in parent.keywords]
        ):
            return True
        if name in _BUILTIN_ERRORS and child in parent.args:
            return True
        if name.endswith("Error") and len(parent.args) == 1 and child in parent.args:
            return True  # an exception built from its message alone (ListingError(...))
    return False


def _differences(a: Any, b: Any, path: list[ast.AST], found: list[list[ast.AST]]) -> None:
    """The path (root first) to each smallest differing node; for a list of another
    length, the path to the node holding the list."""
    if type(a) is not type(b):
        found.append([*path, a] if isinstance(a, ast.AST) else path)
        return
    if isinstance(a, ast.AST):
        here = [*path, a]
        for field in a._fields:
            _differences(getattr(a, field), getattr(b, field), here, found)
    elif isinstance(a, list):
        if len(a) != len(b):
            found.append(path)
            return
        for x, y in zip(a, b, strict=True):
            _differences(x, y, path, found)
    elif a != b:
        found.append(path)


def message_only(before: str, after: str) -> bool:
    """Every difference between the two functions lies inside a message (see the module doc).

    A mutant that drops an optional message argument of ``ValidationError`` (same callee,
    same field), or an argument of a log call, counts too."""
    tree_a, tree_b = ast.parse(before.strip()), ast.parse(after.strip())
    found: list[list[ast.AST]] = []
    _differences(tree_a, tree_b, [], found)
    if not found:
        return False
    for path in found:
        node = path[-1] if path else None
        if isinstance(node, ast.Call) and _callee(node).partition(".")[0] in _LOGGERS:
            continue  # a log call's arguments added, dropped or reordered
        if isinstance(node, ast.Call) and _callee(node) == "ValidationError":
            twin = _twin(tree_a, tree_b, node)
            if twin is not None and ast.dump(node.args[0]) == ast.dump(twin.args[0]):
                continue
        if not _in_message(path):
            return False
    return True


def _twin(tree_a: ast.AST, tree_b: ast.AST, node: ast.Call) -> ast.Call | None:
    nodes_a, nodes_b = list(ast.walk(tree_a)), list(ast.walk(tree_b))
    index = next(i for i, n in enumerate(nodes_a) if n is node)
    twin = nodes_b[index] if index < len(nodes_b) else None
    ok = isinstance(twin, ast.Call) and _callee(twin) == "ValidationError" and twin.args
    return twin if ok else None  # type: ignore[return-value]


# --- the allowlist and the report -------------------------------------------------------------


def read_allow() -> dict[str, tuple[str, str]]:
    """``name  kind  reason`` lines (kind: equivalent or survivor); ``#`` comments."""
    allowed: dict[str, tuple[str, str]] = {}
    for line in ALLOW.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, kind, reason = line.split(None, 2)
        if kind not in ("equivalent", "survivor"):
            raise SystemExit(f"{ALLOW}: {name}: kind {kind!r} is neither equivalent nor survivor")
        allowed[name] = (kind, reason)
    return allowed


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _code_block(diff: str) -> str:
    return "<br>".join(f"`{line.strip()}`".replace("|", "\\|") for line in diff.splitlines())


def report(results: dict[str, dict[str, Any]], max_children: int) -> tuple[str, bool]:
    allowed = read_allow()
    rows, details, ok = [], [], True
    import importlib.metadata as md

    for module in MODULES:
        result = results.get(module.name)
        if result is None:
            rows.append(f"| `{module.path}` | not measured | | | | | | |")
            continue
        mutants = result["mutants"]
        killed = [m for m in mutants if m["code"] in KILLED]
        standing = [m for m in mutants if m["code"] not in KILLED]
        for m in standing:
            m["message_only"] = message_only(m["before"], m["after"]) if m["before"] else False
        message = [m for m in standing if m["message_only"]]
        equivalent = [
            m
            for m in standing
            if not m["message_only"] and allowed.get(m["name"], ("",))[0] == "equivalent"
        ]
        survivors = [m for m in standing if m not in message and m not in equivalent]
        counted = len(mutants) - len(message) - len(equivalent)
        score = 100.0 * len(killed) / counted if counted else 100.0
        ok &= score >= 90.0
        rows.append(
            f"| `{module.path}` | **{score:.1f}%** | {len(mutants)} | {len(killed)} | "
            f"{len(survivors)} | {len(message)} | {len(equivalent)} | {result['seconds']} s |"
        )
        section = [
            f"### `{module.path}`",
            "",
            f"Tests: {', '.join(f'`{t}`' for t in result['tests'])}. "
            f"Measured {result['measured']}.",
            "",
        ]
        if survivors:
            section += [
                "Survivors (counted against the score):",
                "",
                "| mutant | change | why |",
                "|---|---|---|",
            ]
            for m in survivors:
                kind, reason = allowed.get(m["name"], ("", "**unexplained**"))
                if kind != "survivor":
                    ok = False
                status = " (no test reaches it)" if m["code"] in (5, 33) else ""
                section.append(
                    f"| `{_short(m['name'])}`{status} | {_code_block(m['diff'])} | {reason} |"
                )
            section.append("")
        if equivalent:
            section += ["Equivalent (excluded):", "", "| mutant | change | why |", "|---|---|---|"]
            for m in equivalent:
                section.append(
                    f"| `{_short(m['name'])}` | {_code_block(m['diff'])} | "
                    f"{allowed[m['name']][1]} |"
                )
            section.append("")
        if message:
            names = ", ".join(f"`{_short(m['name'])}`" for m in message)
            section += [f"Message-only (excluded, {len(message)}): {names}.", ""]
        details += section
    stale = sorted(
        name
        for name, (kind, _) in allowed.items()
        if not any(
            m["name"] == name and m["code"] not in KILLED
            for r in results.values()
            for m in r["mutants"]
        )
        and any(
            name.startswith(f"{PACKAGE}.{mod.path[:-3].replace('/', '.')}.")
            for mod in MODULES
            if mod.name in results
        )
    )
    text = "\n".join(
        [
            "# Mutation testing",
            "",
            "<!-- Written by `make mutation` (tools/mutation.py); do not edit by hand. -->",
            "",
            "The safety-critical modules, each mutated by "
            f"mutmut {md.version('mutmut')} and run against the tests that cover it "
            f"(`make mutation`, which runs `python tools/mutation.py --max-children "
            f"{max_children}`: one module at a time). Score = killed / (mutants - "
            "message-only - equivalent); a timeout counts as killed, a mutant that no "
            "selected test reaches as survived. Message-only mutants change only the value, "
            "`accepted` or `problem` of a `ValidationError` (never its field), a log call's "
            "arguments or the message of an exception built from its message alone, decided "
            "from the code by "
            "`tools/mutation.py`; equivalent mutants, and the reason of each survivor, are "
            "listed by name in `tools/mutation_allow.txt`.",
            "",
            "Times are wall times on a 2-core machine shared with other work. "
            "`make mutation MUTATION_ARGS='--only plan'` re-measures one module and keeps "
            "the others' last results (`build/mutation/results.json`).",
            "",
            "| module | score | mutants | killed | survived | message-only | equivalent | time |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *details,
            *(
                [
                    "Stale allowlist entries (no longer survivors):",
                    "",
                    *[f"- `{name}`" for name in stale],
                    "",
                ]
                if stale
                else []
            ),
        ]
    )
    return text.rstrip() + "\n", ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[m.name for m in MODULES])
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--collect",
        type=int,
        metavar="SECONDS",
        help="read the outcome of the --only modules' last runs (which took SECONDS) again",
    )
    parser.add_argument("--inspect", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inspect is not None:
        print(json.dumps(inspect(args.inspect)))
        return 0
    results: dict[str, dict[str, Any]] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.report_only:
        for module in MODULES:
            if args.only and module.name not in args.only:
                continue
            if args.collect is not None:
                results[module.name] = _collect(module, args.collect)
            else:
                results[module.name] = _run(module, args.max_children)
            WORK.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1))
    text, ok = report(results, args.max_children)
    REPORT.write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
