"""The import graph of jobs/ and dags/, by layer, as a Mermaid drawing (README "Layout").

    python scripts/import_graph.py            # prints the Mermaid flowchart
    python scripts/import_graph.py --check    # exits 1 naming every import that points up a layer

Layers, top to bottom: a module imports its own layer or lower ones, never a higher one (lazy
imports inside functions count too). tests/test_layout.py runs the check.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Longest matching prefix decides a module's layer.
LAYERS = {
    "entry points": ("dags", "jobs.cli", "jobs.entrypoint"),
    "registry and pipeline": ("jobs.registry", "jobs.pipeline"),
    "stages (read and write)": (
        "jobs.bronze.stage",
        "jobs.privacy.stage",
        "jobs.silver.stage",
        "jobs.gold.stage",
        "jobs.ops",
        "jobs.privacy.requests",
        "jobs.privacy.audit",
        "jobs.quality.gates",
        "jobs.silver.tagger_train",
    ),
    "transforms": ("jobs.bronze", "jobs.silver", "jobs.gold", "jobs.privacy", "jobs.quality", "jobs.sample"),
    "runtime": ("jobs",),
}
ORDER = list(LAYERS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    best = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (layer, prefix)
    return best[0] if best else None


def edges() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file)."""
    found = defaultdict(set)
    for path in sorted([*REPO.glob("jobs/**/*.py"), *REPO.glob("dags/*.py")]):
        name = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if (
                    target.startswith("jobs")
                    and (REPO / (target.replace(".", "/") + ".py")).exists()
                    or (REPO / target.replace(".", "/") / "__init__.py").exists()
                ):
                    if target != name and target != "jobs":
                        found[name].add(target)
    return found


def upward() -> list[str]:
    """Every import that points from a lower layer to a higher one."""
    return [
        f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
        for a, targets in sorted(edges().items())
        for b in sorted(targets)
        if ORDER.index(layer_of(b)) < ORDER.index(layer_of(a))
    ]


def mermaid() -> str:
    graph = edges()
    modules = sorted(set(graph) | {b for targets in graph.values() for b in targets})
    node = {m: m.replace(".", "_") for m in modules}
    lines = ["flowchart TD"]
    for i, layer in enumerate(ORDER):
        lines.append(f'  subgraph L{i}["{layer}"]')
        lines += [f'    {node[m]}["{m}"]' for m in modules if layer_of(m) == layer]
        lines.append("  end")
    lines += [f"  {node[a]} --> {node[b]}" for a in sorted(graph) for b in sorted(graph[a])]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        problems = upward()
        print("\n".join(problems) or "no import points up a layer")
        sys.exit(1 if problems else 0)
    print(mermaid())
