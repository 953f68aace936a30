"""The product's functions stay small enough to read: none over 60 lines in controller,
policies and reconcilers, unless its ``def`` line says why with a ``# long:`` comment. (Argument
count and complexity are ruff's PLR0913 and C901, in ``make lint``.)"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("controller", "policies", "reconcilers")
MAX_LINES = 60


def _comments(source: str) -> dict[int, str]:
    return {token.start[0]: token.string
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT}


def long_functions(path: Path) -> list[tuple[str, int, int]]:
    """(name, first line, length) of each function over MAX_LINES without a ``# long:`` why."""
    source = path.read_text()
    comments = _comments(source)
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        header = range(node.lineno, node.body[0].lineno)  # the def, however many lines it takes
        if length > MAX_LINES and not any("long:" in comments.get(n, "") for n in header):
            found.append((node.name, node.lineno, length))
    return found


def test_no_function_runs_over_sixty_lines_without_saying_why() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
                 for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
                 for name, line, length in long_functions(path)]
    assert offenders == []


def test_the_check_sees_a_long_function_and_its_reason(tmp_path: Path) -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_LINES))
    (tmp_path / "bare.py").write_text("def f():\n" + body)
    (tmp_path / "said.py").write_text("def f():  # long: a table\n" + body)
    assert long_functions(tmp_path / "bare.py") == [("f", 1, MAX_LINES + 1)]
    assert long_functions(tmp_path / "said.py") == []
