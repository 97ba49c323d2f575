"""The stages import in one direction only (ARCHITECTURE.md), and the law side never imports torch.

Every ``import`` of ``src/complaw`` is read from the source (module level and inside functions alike), so a
back-edge fails here whether or not it would run.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "complaw"

#: Stage of each package or module, in data-flow order: a module may import its own stage and earlier ones.
#: (Sub-steps order the parts of one stage: evaluate before recover, laws before decide.)
STAGES: dict[str, float] = {
    # the foundation every stage may use
    "complaw": 0, "complaw.errors": 0, "complaw.checks": 0, "complaw.cache": 0, "complaw.logs": 0,
    "complaw.registry": 0, "complaw.data": 0, "complaw.config": 0,
    "complaw.capacity": 0.5,  # number formats and their capacity ρ (numpy only): quantisers and laws read it
    "complaw.models": 1,
    "complaw.zoo": 2,  # the embedded default: bundled checkpoints, corpus splits, tasks; real models by name
    "complaw.textdata": 3,
    "complaw.compress": 4,
    "complaw.evaluate": 5, "complaw.recover": 5.5,
    "complaw.recipe": 6,
    "complaw.sweep": 7,
    "complaw.laws": 8.1, "complaw.decide": 8.2,
    "complaw.report": 9,
    "complaw.cli": 10, "complaw.__main__": 10,
}
#: Stages that read tables, not models: nothing they import (directly or through complaw) may be one of these.
LAW_SIDE = ("complaw.capacity", "complaw.laws", "complaw.decide")
MODEL_LIBRARIES = ("torch", "transformers", "peft", "lm_eval", "accelerate")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    if not name.startswith("complaw"):
        return False
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:  # `from complaw import zoo` imports the module complaw.zoo, not complaw itself
                out.add(f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base)
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}


def stage(module: str) -> float | None:
    """The stage of the longest prefix of ``module`` in :data:`STAGES` (None outside complaw)."""
    parts = module.split(".")
    for i in range(len(parts), 1, -1):  # the package's own stage counts for complaw itself only
        key = ".".join(parts[:i])
        if key in STAGES:
            return STAGES[key]
    return STAGES.get(module)


def back_edges(g: dict[str, set[str]]) -> list[str]:
    """Imports that run against the data flow: a module importing a later stage."""
    modules = set(g)
    bad = []
    for mod, deps in sorted(g.items()):
        for dep in sorted(deps):
            if dep not in modules:
                continue
            a, b = stage(mod), stage(dep)
            if a is not None and b is not None and b > a:
                bad.append(f"{mod} (stage {a:g}) imports {dep} (stage {b:g})")
    return bad


def reachable(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        for dep in g.get(m, ()):
            if dep not in seen:
                seen.add(dep)
                if dep in g:
                    todo.append(dep)
    return seen


def test_every_module_has_a_stage():
    assert [m for m in graph() if stage(m) is None] == []


def test_stages_import_in_one_direction_only():
    assert back_edges(graph()) == []


@pytest.mark.parametrize("edge", [
    ("complaw.models.io", "complaw.compress"),  # a loader that registers itself in a method module
    ("complaw.sweep.run", "complaw.report"),  # the sweep writing its own report
    ("complaw.models.adapters", "complaw.compress.registry"),  # a model helper kept beside the methods
    ("complaw.laws.fit", "complaw.decide"),
])
def test_a_reintroduced_back_edge_fails(edge):
    g = graph()
    g[edge[0]] = g[edge[0]] | {edge[1]}
    assert len(back_edges(g)) == 1 and edge[0] in back_edges(g)[0]


def test_the_law_side_never_imports_model_libraries():
    g = graph()
    for mod in g:
        if mod.startswith(LAW_SIDE):
            heavy = {d.split(".")[0] for d in reachable(g, mod)} & set(MODEL_LIBRARIES)
            assert not heavy, f"{mod} reaches {sorted(heavy)}"


def test_the_cli_modules_import_nothing_from_the_app():
    """Each command module is imported by the command table (complaw.cli), never the other way round."""
    g = graph()
    for mod, deps in g.items():
        if mod.startswith("complaw.cli."):
            assert "complaw.cli" not in deps, mod
