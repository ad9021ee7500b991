"""The rooms: every import runs one way (no cycle), and cli.py, which every script imports first, imports no
other room. Read with the ast module only."""

import ast
import glob
import os

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def imports():
    """{module: the project's modules it imports} of the project's files at the root."""
    modules = {os.path.basename(p)[:-3]: p for p in glob.glob(os.path.join(PROJECT, "*.py"))}
    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        found |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        graph[name] = (found & modules.keys()) - {name}
    return graph


def test_no_import_runs_in_a_circle():
    graph, done = imports(), set()

    def visit(name, path):
        assert name not in path, f"an import cycle: {' -> '.join(path + (name,))}"
        if name not in done:
            for other in graph[name]:
                visit(other, path + (name,))
            done.add(name)

    for name in graph:
        visit(name, ())
    assert len(graph) >= 20  # the rule looked at the rooms


def test_the_command_line_module_imports_no_other_room():
    assert imports()["cli"] == set()


def test_every_name_imported_from_a_room_exists_there():
    """`from room import name` anywhere, inside functions too (the benchmarks import late): a room that lost a
    name in a move breaks the import only when that function runs, so it is checked here, for every file."""
    import importlib
    import sys

    rooms = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(PROJECT, "*.py"))}
    sys.path.insert(0, os.path.join(PROJECT, "benchmarks"))
    missing = []
    for path in glob.glob(os.path.join(PROJECT, "*.py")) + glob.glob(os.path.join(PROJECT, "benchmarks", "*.py")):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in rooms:
                module = importlib.import_module(node.module)
                missing += [f"{os.path.relpath(path, PROJECT)}:{node.lineno} {node.module}.{alias.name}"
                            for alias in node.names if not hasattr(module, alias.name)]
    assert not missing
