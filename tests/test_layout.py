"""The code reads top-down: entry points -> registry and pipeline -> stages -> transforms -> runtime
(scripts/import_graph.py draws it); nothing lists the stages but the registry."""

import importlib.util
import shutil

from jobs import REPO_ROOT


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", REPO_ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_points_up_a_layer():
    assert _graph_module().upward() == []


def test_an_upward_import_is_named(tmp_path, monkeypatch):
    graph = _graph_module()
    shutil.copytree(REPO_ROOT / "jobs", tmp_path / "jobs")
    tables = tmp_path / "jobs" / "tables.py"
    tables.write_text(tables.read_text() + "\n\ndef _late():\n    from jobs.pipeline import run_date\n")
    monkeypatch.setattr(graph, "REPO", tmp_path)
    assert graph.upward() == ["jobs.tables (runtime) imports jobs.pipeline (registry and pipeline)"]


def test_stage_names_are_written_in_the_registry_only():
    from jobs.registry import NAMES

    for path in [*REPO_ROOT.glob("jobs/**/*.py"), *REPO_ROOT.glob("dags/*.py")]:
        if path.name == "registry.py":
            continue
        text = path.read_text()
        listed = [name for name in NAMES if f'"{name}"' in text]
        assert len(listed) < 3, f"{path.relative_to(REPO_ROOT)} lists stages {listed}: read jobs.registry instead"
