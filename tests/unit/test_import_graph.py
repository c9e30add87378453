"""The import graph of acpcheck has no cycle and no edge against the layer order.

The graph is read with ``ast`` from the source, not from what a run happens to
import: every ``import`` and ``from … import`` counts, at the top of a module, inside
a function or under ``if TYPE_CHECKING:`` alike (a cycle that only type checkers see
is still two modules that cannot be understood one without the other). Relative
imports are resolved, and ``from pkg import module`` is an edge to the module.

It covers ``acpcheck/``, ``checks/`` (imported as ``acpcheck.checks``), the data
packages ``profiles/`` and ``reports/``, and the lab (``lab/acpcheck_lab``, or
``acpcheck/lab`` before it became its own distribution).

``LAYERS`` is the layer order of docs/architecture.md ("Layers"), lowest first; a
test below keeps the two equal. A module may import modules of its own layer and of
the layers below it, never above. Run with ``-s`` for the one-line summary.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Where each import name's source lives: (directory, the name it is imported as).
PACKAGES = [
    (ROOT / "acpcheck", "acpcheck"),
    (ROOT / "checks", "acpcheck.checks"),
    (ROOT / "profiles", "acpcheck.profiles"),
    (ROOT / "reports", "acpcheck.reports"),
    (ROOT / "lab" / "acpcheck_lab", "acpcheck_lab"),
]

#: The layer order, lowest first: (layer, module patterns). ``x`` is the module x
#: itself; ``x.*`` is the package x and everything in it. A module takes the layer of
#: its exact name, else of the longest ``x.*`` that holds it. Patterns that match no
#: module yet are allowed (the lab is ``acpcheck.lab.*`` or ``acpcheck_lab.*``).
#: Mirrors the table of docs/architecture.md, "Layers" (test_layers_match_the_docs).
LAYERS: list[tuple[str, list[str]]] = [
    (
        "base",
        [
            "acpcheck.constants",
            "acpcheck.secretshapes",
            "acpcheck.errors",
            "acpcheck.jsontext",
            "acpcheck.yamlsource",
            "acpcheck.addressing",
            "acpcheck.tlserrors",
            "acpcheck.profiles.*",
            "acpcheck.reports.*",
        ],
    ),
    ("matrix", ["acpcheck.matrix.*"]),
    ("model", ["acpcheck.model.*", "acpcheck.catalog", "acpcheck.checks", "acpcheck.clihelp"]),
    ("transport", ["acpcheck.transport.*"]),
    ("facts", ["acpcheck.facts.*"]),
    ("sources", ["acpcheck.sources.*"]),
    ("grading", ["acpcheck.grading", "acpcheck.testing"]),
    ("public API", ["acpcheck"]),
    ("report", ["acpcheck.report.*"]),
    ("remediation", ["acpcheck.remediation.*"]),
    ("checks", ["acpcheck.checks.*"]),
    ("run and plugin", ["acpcheck.run.*", "acpcheck.plugin.*", "acpcheck.report.collector"]),
    ("cli", ["acpcheck.cli", "acpcheck.__main__", "acpcheck.completion"]),
    ("lab", ["acpcheck_lab.*", "acpcheck.lab.*"]),
]

#: The lab is a separate distribution on top of the product: it may use the
#: product's public names only, never one with a leading underscore.
LAB_PACKAGES = ("acpcheck_lab", "acpcheck.lab")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line of the import
    names: tuple[str, ...] = ()  # the names a ``from`` import takes from the target


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))

    def count(self) -> int:
        return len({(e.source, e.target) for edges in self.edges.values() for e in edges})


def module_files(packages: list[tuple[Path, str]]) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for directory, name in packages:
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.py")):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([*name.split("."), *parts])] = path
    return modules


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its closest enclosing module that is in the graph (None: not ours)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def build_graph(packages: list[tuple[Path, str]] = PACKAGES, root: Path = ROOT) -> Graph:
    graph = Graph(module_files(packages))
    modules = graph.modules
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        where = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found: list[tuple[str, tuple[str, ...]]] = []
            if isinstance(node, ast.Import):
                found = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    imported = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    imported = node.module or ""
                for alias in node.names:
                    submodule = f"{imported}.{alias.name}"
                    # `from pkg import module` is an edge to the module, not to pkg's __init__
                    found.append((submodule, ()) if submodule in modules else (imported, (alias.name,)))
            for name, names in found:
                target = _known(name, modules)
                if target is not None and target != module:
                    graph.edges[module].append(Edge(module, target, f"{where}:{node.lineno}", names))
    return graph


def layer_of(module: str) -> int | None:
    """The index in ``LAYERS`` of ``module``'s layer (None: no pattern holds it)."""
    best: tuple[int, int] | None = None  # (specificity, layer)
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if pattern.endswith(".*"):
                prefix = pattern[:-2]
                if module == prefix or module.startswith(prefix + "."):
                    specificity = len(prefix)
                else:
                    continue
            elif module == pattern:
                specificity = 10_000  # an exact name beats every package pattern
            else:
                continue
            if best is None or specificity > best[0]:
                best = (specificity, index)
    return None if best is None else best[1]


def find_cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle through each module that is on a cycle, as a chain
    ``[a, b, …, a]``; each cycle once."""
    successors = {m: sorted({e.target for e in graph.edges.get(m, [])}) for m in graph.modules}
    cycles: dict[frozenset[str], list[str]] = {}
    for start in sorted(graph.modules):
        # breadth-first from start's successors back to start: the shortest cycle through it
        parents: dict[str, str] = {}
        frontier = [start]
        found = False
        while frontier and not found:
            following = []
            for current in frontier:
                for successor in successors[current]:
                    if successor == start:
                        chain = [current]
                        while chain[-1] != start:
                            chain.append(parents[chain[-1]])
                        chain.reverse()
                        cycles.setdefault(frozenset(chain), [*chain, start])
                        found = True
                        break
                    if successor not in parents:
                        parents[successor] = current
                        following.append(successor)
                if found:
                    break
            frontier = following
    return sorted(cycles.values())


def upward_edges(graph: Graph) -> list[str]:
    found = []
    for edges in graph.edges.values():
        for edge in edges:
            source, target = layer_of(edge.source), layer_of(edge.target)
            if source is not None and target is not None and target > source:
                found.append(
                    f"{edge.where}: {edge.source} ({LAYERS[source][0]}) imports {edge.target} ({LAYERS[target][0]})"
                )
    return sorted(found)


def private_lab_imports(graph: Graph) -> list[str]:
    found = []
    for edges in graph.edges.values():
        for edge in edges:
            if edge.source.startswith(LAB_PACKAGES) and not edge.target.startswith(LAB_PACKAGES):
                private = [n for n in edge.names if n.startswith("_")]
                private += [part for part in edge.target.split(".") if part.startswith("_") and part != "__main__"]
                if private:
                    found.append(f"{edge.where}: the lab takes {', '.join(private)} from {edge.target}")
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


def summary(graph: Graph) -> str:
    return (
        f"import graph: {len(graph.modules)} modules, {graph.count()} edges, "
        f"cycles: {len(find_cycles(graph))}, upward edges: {len(upward_edges(graph))}"
    )


def test_no_import_cycle(graph: Graph) -> None:
    line = summary(graph)
    print(f"\n{line}")
    cycles = find_cycles(graph)
    assert not cycles, line + "\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_every_module_has_a_layer(graph: Graph) -> None:
    missing = sorted(m for m in graph.modules if layer_of(m) is None)
    assert not missing, f"modules in no layer (add them to docs/architecture.md, Layers, and LAYERS): {missing}"


def test_no_edge_against_the_layer_order(graph: Graph) -> None:
    edges = upward_edges(graph)
    assert not edges, summary(graph) + "\n" + "\n".join(edges)


def test_the_lab_uses_public_names_only(graph: Graph) -> None:
    found = private_lab_imports(graph)
    assert not found, "\n".join(found)


def documented_layers() -> list[tuple[str, list[str]]]:
    """The table of docs/architecture.md's "Layers" section: (layer, patterns) per row."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = re.search(r"^## Layers\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "docs/architecture.md has no '## Layers' section"
    rows = []
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0].isdigit():
            rows.append((cells[1], re.findall(r"`([^`]+)`", cells[2])))
    return rows


def test_layers_match_the_docs() -> None:
    assert documented_layers() == LAYERS


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Top-level, function-level and TYPE_CHECKING imports, relative ones and ``from
    pkg import module`` all make edges, and a cycle is told as a chain."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "b.py": "def f():\n    from .sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkg.a\nfrom .. import d\nfrom pkg.sub import helper_name\nimport os\n",
        "d.py": "",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = build_graph([(package, "pkg")], tmp_path)
    edges = {(e.source, e.target) for es in graph.edges.values() for e in es}
    assert edges == {
        ("pkg.a", "pkg.b"),  # under TYPE_CHECKING
        ("pkg.b", "pkg.sub.c"),  # in a function, relative, from a package import a module
        ("pkg.sub.c", "pkg.a"),
        ("pkg.sub.c", "pkg.d"),  # relative, two levels
        ("pkg.sub.c", "pkg.sub"),  # a name from a package's __init__
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
