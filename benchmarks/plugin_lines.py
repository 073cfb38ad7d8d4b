"""Lines of Python in function bodies against lines of tables, per provider plugin.

    python benchmarks/plugin_lines.py [PLUGIN_DIR ...]

A "table" line belongs to a module- or class-level assignment (data: URLs, status names,
error tables, capabilities). A "code" line belongs to a function body, docstrings excluded.
Blank and comment-only lines count as neither. With no arguments, every first-party plugin
and the example plugin are measured.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [
    *sorted(p for p in (ROOT / "plugins" / "kling_core_plugins").iterdir() if p.is_dir() and p.name != "__pycache__"),
    ROOT / "examples" / "kling-example-provider" / "kling_example",
]


def code_lines(source: str) -> set[int]:
    """Lines holding a token other than comments, newlines and indentation."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    out: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            out.update(range(tok.start[0], tok.end[0] + 1))
    return out


def _span(node: ast.AST) -> set[int]:
    return set(range(node.lineno, (node.end_lineno or node.lineno) + 1))  # type: ignore[attr-defined]


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def measure(path: Path) -> tuple[int, int]:
    source = path.read_text("utf-8")
    real = code_lines(source)
    tree = ast.parse(source)
    body: set[int] = set()
    tables: set[int] = set()

    def visit(stmts: list[ast.stmt], in_function: bool) -> None:
        for node in stmts:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = [s for s in node.body if not _is_docstring(s)]
                for s in inner:
                    body.update(_span(s))
            elif isinstance(node, ast.ClassDef):
                visit(node.body, in_function)
            elif not in_function and isinstance(node, (ast.Assign, ast.AnnAssign)):
                tables.update(_span(node))

    visit(tree.body, False)
    return len(body & real), len(tables & real)


def main(argv: list[str]) -> None:
    dirs = [Path(a) for a in argv] or DEFAULT
    print(f"{'plugin':<14}{'code':>6}{'tables':>8}   (lines; code = function bodies)")
    for d in dirs:
        code = tables = 0
        for f in sorted(d.rglob("*.py")):
            c, t = measure(f)
            code += c
            tables += t
        print(f"{d.name:<14}{code:>6}{tables:>8}")


if __name__ == "__main__":
    main(sys.argv[1:])
