"""No import cycle between the packages of portal/: every module is parsed (ast, nothing imported),
each `import portal.x…` / `from portal.x… import` — at the top or inside a function — is an edge
from the importing module's package to the imported one, and the graph must have no cycle.

The same picture by hand: `grep -rn "^from portal\\." portal/<package>` lists one package's edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent / "portal"


def _package_of(module: str) -> str | None:
    """portal.contracts.lifecycle → contracts; top-level modules (portal.db, portal.clock) → None."""
    parts = module.split(".")
    if parts[0] != "portal" or len(parts) < 2:
        return None
    return parts[1] if (PORTAL / parts[1]).is_dir() else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    relative_base = ".".join(["portal", *path.relative_to(PORTAL).with_suffix("").parts])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = relative_base.rsplit(".", node.level)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # `from portal import contracts` imports the package contracts
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PORTAL.rglob("*.py")):
        source = _package_of(".".join(["portal", *path.relative_to(PORTAL).with_suffix("").parts]))
        if source is None:
            continue
        edges = graph.setdefault(source, set())
        for module in _imports(path):
            target = _package_of(module)
            if target is not None and target != source:
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_feature_packages_import_each_other_without_a_cycle():
    graph = package_graph()
    assert {"contracts", "signature_requests", "downloads"} <= graph.keys()
    assert "contracts" in graph["signature_requests"]  # the parser sees edges at all
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages of portal/: " + " → ".join(cycle or [])
