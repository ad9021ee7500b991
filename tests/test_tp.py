"""docs/tp.md: every `file.py:Name` it points a student at exists, and every relative link leads to a file.

Read with the ast module only (no imports of the project, no torch), so it runs in a fraction of a second.
"""

import ast
import functools
import os
import re

import pytest

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(PROJECT, "docs")
PAGE = os.path.join(DOCS, "tp.md")
# `train.py:L1Loss`, `train.py:train`, `bookkeeping.py:RunState.end_epoch`: a file at the project root,
# then a top-level function or class, optionally one of that class's methods.
REFERENCE = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*\.py):([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)`")
# [text](target): the target up to the closing parenthesis, no spaces.
LINK = re.compile(r"\]\(([^)\s]+)\)")
AT_LEAST = 12  # references the page holds (37 when this was written): a rule that finds none proves nothing


def page_text():
    with open(PAGE, encoding="utf-8") as f:
        return f.read()


def references():
    """[(file, dotted name)] of the page's `file.py:Name` references, each once, in page order."""
    return list(dict.fromkeys(REFERENCE.findall(page_text())))


@functools.lru_cache(maxsize=None)
def definitions(path):
    """{name: None for a top-level function, the set of its method names for a top-level class} of a Python file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    found = {}
    for node in tree.body:
        if isinstance(node, functions):
            found[node.name] = None
        elif isinstance(node, ast.ClassDef):
            found[node.name] = {item.name for item in node.body if isinstance(item, functions)}
    return found


def unresolved(file, name):
    """Why `file:name` does not resolve, or None if it does."""
    path = os.path.join(PROJECT, file)
    if not os.path.isfile(path):
        return f"{file} is not a file at the project root"
    defined = definitions(path)
    owner, _, method = name.partition(".")
    if owner not in defined:
        return f"{file} has no top-level function or class {owner}"
    if method and defined[owner] is None:
        return f"{file}: {owner} is a function, not a class with a method {method}"
    if method and method not in defined[owner]:
        return f"{file}: class {owner} has no method {method}"
    return None


def test_the_rule_finds_references_and_nothing_else():
    text = ("`unet_model.py:UNet.forward` `train.py:L1Loss` `python train.py` `checkpoints/best_model.pth` "
            "`unet_model.py` `epoch/loss (x 1e-3)` `a.py:f.g.h`")
    assert REFERENCE.findall(text) == [("unet_model.py", "UNet.forward"), ("train.py", "L1Loss")]


def test_a_missing_name_is_named():
    assert unresolved("train.py", "train") is None
    assert unresolved("unet_model.py", "UNet.forward") is None
    assert "no top-level" in unresolved("train.py", "NoSuchThing")
    assert "no method" in unresolved("unet_model.py", "UNet.no_such_method")
    assert "is a function" in unresolved("train.py", "train.step")
    assert "not a file" in unresolved("no_such_file.py", "main")


def test_the_page_has_enough_references():
    found = references()
    assert len(found) >= AT_LEAST, f"docs/tp.md names only {len(found)} `file.py:Name` references: {found}"


@pytest.mark.parametrize("file, name", references(), ids=lambda value: value)
def test_every_reference_resolves(file, name):
    problem = unresolved(file, name)
    assert problem is None, f"docs/tp.md refers to `{file}:{name}`, which does not resolve: {problem}"


def test_every_relative_link_leads_to_a_file():
    links = LINK.findall(page_text())
    assert links, "docs/tp.md has no links: the rule found nothing"
    broken = []
    for target in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):  # https:, mailto:, this page
            continue
        path = os.path.normpath(os.path.join(DOCS, target.split("#")[0]))
        if not os.path.exists(path):
            broken.append(f"{target} ({os.path.relpath(path, PROJECT)} does not exist)")
    assert not broken, f"docs/tp.md links to missing files: {broken}"
