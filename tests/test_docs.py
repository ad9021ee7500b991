"""The docs: every TensorBoard chart they name is one a training run shows, and every code reference of
README.md, docs/*.md and benchmarks/README.md resolves (names, flags and their choices, links, anchors),
without a single issue number (they mean nothing to a student)."""

import glob
import os
import re

import pytest

import train
from test_train import tiny_args

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A chart name as reports.py spells them, quoted in backticks: a lowercase group, one slash, then words
# with at least one space ("epoch/loss (x 1e-3)"). Paths (`data/cache/`, `outputs/Toy Song test 01/`) and
# commands (`python benchmarks/...`) have more slashes, no space after the slash, or text before the group.
CHART_NAME = re.compile(r"`([a-z]+/[^/`]* [^/`]*)`")
AT_LEAST = 5  # distinct names quoted (7 when this was written): a rule that finds none would prove nothing


def quoted_chart_names():
    """{chart name: [files quoting it]} of README.md and docs/*.md."""
    found = {}
    for path in [os.path.join(PROJECT, "README.md"), *sorted(glob.glob(os.path.join(PROJECT, "docs", "*.md")))]:
        with open(path, encoding="utf-8") as f:
            for name in CHART_NAME.findall(f.read()):
                found.setdefault(name, []).append(os.path.relpath(path, PROJECT))
    return found


def tensorboard_tags(run_dir):
    """Every tag TensorBoard shows for a run (its folder and the line folders below it): scalars, images,
    audio and text."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    events = EventMultiplexer()
    events.AddRunsFromDirectory(run_dir)
    events.Reload()
    return {tag for run in events.Runs().values() for kind in ("scalars", "images", "audio", "tensors")
            for tag in run[kind]}


def test_the_rule_tells_chart_names_from_paths_and_commands():
    quoted = "`epoch/loss (x 1e-3)` `figures/mix, mask, vocals` `data/cache/` `outputs/Toy Song test 01/` " \
             "`python benchmarks/bench_train.py` `n/a` `--augment / --no-augment` `disc1/01.wav`"
    assert CHART_NAME.findall(quoted) == ["epoch/loss (x 1e-3)", "figures/mix, mask, vocals"]


def test_every_chart_the_docs_name_is_one_tensorboard_shows(toy_root, tmp_path):
    quoted = quoted_chart_names()
    assert len(quoted) >= AT_LEAST, quoted
    train.main(tiny_args(toy_root, tmp_path, "--epochs", "1"))  # --figure-every 1: the figures and audio too
    (run_dir,) = glob.glob(str(tmp_path / "ckpt" / "logs" / "*"))
    tags = tensorboard_tags(run_dir)
    assert {"epoch/loss (x 1e-3)", "figures/mix, mask, vocals", "audio 1 mix", "config/text_summary"} <= tags
    unknown = {name: files for name, files in quoted.items() if name not in tags}
    assert not unknown, f"charts quoted in the docs that TensorBoard does not show: {unknown}; it shows {tags}"


# --------------------------------------------------------------------------
# Every code reference of the docs resolves: names, flags, choices, links and anchors (ast only, no imports)
# --------------------------------------------------------------------------

PAGES = ["README.md", *sorted(os.path.relpath(p, PROJECT) for p in glob.glob(os.path.join(PROJECT, "docs", "*.md"))),
         "benchmarks/README.md"]
CODE_SPAN = re.compile(r"```.*?```|`[^`\n]+`", re.S)
# `songs.find_song`, `device.PRECISION`, `checkpoints.load_model(...)`, `RunState.end_epoch` after a module.
DOTTED = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9_-]*)")
# A command a page shows: the script, then its words up to the end of the line (or of the code span).
COMMAND = re.compile(r"(?:python3?|\.venv/bin/python)\s+((?:benchmarks/)?[a-z_]+\.py)([^\n`|]*)")
# Flags of the other programs the pages show (tensorboard, torchrun, pip, pytest, git), and argparse's own.
OTHER_PROGRAMS = {"--logdir", "--standalone", "--nproc_per_node", "--nnodes", "--node_rank", "--master_addr",
                  "--master_port", "--durations", "--help"}
# A module's attribute, not a file name: `separation.png` is a file.
FILE_EXTENSIONS = {"py", "png", "json", "csv", "wav", "flac", "pth", "md", "txt", "npy", "mp3", "mp4", "yaml"}
# The page that keeps the measurements of the options measured and removed may name their flags.
REMOVED_OPTIONS_PAGE = "docs/training.md"
ISSUE = re.compile(r"\bissues?\s+\d+", re.I)


def page(name):
    with open(os.path.join(PROJECT, name), encoding="utf-8") as f:
        return f.read()


def modules():
    """{module name: its path}: the project's Python files at the root and in benchmarks/."""
    paths = glob.glob(os.path.join(PROJECT, "*.py")) + glob.glob(os.path.join(PROJECT, "benchmarks", "*.py"))
    return {os.path.splitext(os.path.basename(p))[0]: p for p in paths}


def top_level(path):
    """{name: set of method names (a class), or None (a function or a module-level variable)} of a file."""
    import ast

    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = None
        elif isinstance(node, ast.ClassDef):
            found[node.name] = {n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AnnAssign,
                                                                                  ast.Assign))
                                and hasattr(n, "name")} | {n.target.id for n in node.body
                                                            if isinstance(n, ast.AnnAssign)}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found[name.id] = None
    return found


def parser_flags(path):
    """{flag: its choices (a set) or None} of every add_argument call in a file, its aliases included."""
    import ast

    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    dicts = {t.id: {k.value for k in n.value.keys if isinstance(k, ast.Constant)} for n in tree.body
             if isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict) for t in n.targets
             if isinstance(t, ast.Name)}
    flags = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "add_argument":
            choices = next((k.value for k in call.keywords if k.arg == "choices"), None)
            if isinstance(choices, (ast.Tuple, ast.List)):
                choices = {c.value for c in choices.elts if isinstance(c, ast.Constant)}
            elif isinstance(choices, ast.Call) and choices.args and isinstance(choices.args[0], ast.Name):
                choices = dicts.get(choices.args[0].id)  # list(VARIANTS): a module-level dict's keys
            elif isinstance(choices, ast.Name):
                choices = dicts.get(choices.id)
            else:
                choices = None
            for arg in call.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"):
                    flags[arg.value] = choices
    return flags


def script_flags(script):
    """The flags `python script` takes: its own add_argument calls and those of the project modules whose
    flag helpers (add_*_flag, add_*_flags) it calls."""
    import ast

    path = os.path.join(PROJECT, script)
    flags = dict(parser_flags(path))
    with open(path, encoding="utf-8") as f:
        called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
                  for n in ast.walk(ast.parse(f.read())) if isinstance(n, ast.Call)}
    for name, module in modules().items():
        if any(helper in called for helper in top_level(module) if helper.startswith("add_") and "flag" in helper):
            flags.update(parser_flags(module))
    return flags


def every_flag():
    flags = {}
    for path in modules().values():
        flags.update(parser_flags(path))
    return flags


def github_anchor(heading, taken):
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces to -, and -1, -2
    for the second and third of the same text."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    slug = text.replace(" ", "-")
    count = taken.count(slug)
    taken.append(slug)
    return f"{slug}-{count}" if count else slug


def anchors(name):
    text = re.sub(r"```.*?```", "", page(name), flags=re.S)
    taken = []
    return {github_anchor(h, taken) for h in re.findall(r"^#+\s+(.*)$", text, re.M)}


def test_the_rules_find_what_they_should():
    text = "`separation.model_sdr` `device.PRECISION` `train.py` `data/cache/` `bookkeeping.RunState.end_epoch` " \
           "`python train.py --epochs 3 --no-augment`"
    spans = " ".join(CODE_SPAN.findall(text))
    assert [m[:2] for m in DOTTED.findall(spans) if m[1] != "py"] == [
        ("separation", "model_sdr"), ("device", "PRECISION"), ("bookkeeping", "RunState")]
    assert FLAG.findall(spans) == ["--epochs", "--no-augment"]
    assert COMMAND.findall(spans) == [("train.py", " --epochs 3 --no-augment")]
    assert github_anchor("Precision, measured on one machine (2026-12-06)", []) == \
        "precision-measured-on-one-machine-2026-12-06"
    assert "--variants" in script_flags("benchmarks/bench_separate.py")
    assert script_flags("benchmarks/bench_separate.py")["--variants"] >= {"full", "lab"}
    assert "--root" in script_flags("train.py") and "--checkpoint" in script_flags("evaluate.py")


@pytest.mark.parametrize("name", PAGES)
def test_every_code_reference_of_a_page_resolves(name):
    known, flags, problems = modules(), every_flag(), []
    removed = set(FLAG.findall(page(name).split("## Options measured and removed")[1].split("\n## ")[0])) \
        if name == REMOVED_OPTIONS_PAGE else set()
    for span in CODE_SPAN.findall(page(name)):
        for module, attribute, member in DOTTED.findall(span):
            if module not in known or attribute in FILE_EXTENSIONS:
                continue
            defined = top_level(known[module])
            if attribute not in defined:
                problems.append(f"{module}.{attribute}: {module}.py has no such top-level name")
            elif member and defined[attribute] is not None and member not in defined[attribute]:
                problems.append(f"{module}.{attribute}.{member}: no such member")
        for flag in FLAG.findall(span):
            if flag not in flags and flag not in OTHER_PROGRAMS | removed and not flag.startswith("--no-"):
                problems.append(f"{flag}: no script of the project has this flag")
        for script, words in COMMAND.findall(span):
            if not os.path.isfile(os.path.join(PROJECT, script)):
                problems.append(f"python {script}: no such script")
                continue
            own = dict(script_flags(script), **{"--help": None})
            tokens = words.split()
            for i, token in enumerate(tokens):
                flag = token.split("=")[0]
                if flag == "--train-args":  # bench_*.py: the words after it are train.py's flags
                    own = dict(script_flags("train.py"), **{"--train-args": None})
                if not flag.startswith("--"):
                    continue
                positive = "--" + flag[5:] if flag.startswith("--no-") else flag
                if flag not in own and positive not in own:
                    problems.append(f"python {script} {flag}: {script} has no such flag")
                elif own.get(flag):
                    for value in tokens[i + 1:]:
                        if value.startswith("-") or value in own[flag]:
                            break
                        if not re.match(r"[\w+.-]+$", value) or value[0].isupper():
                            break
                        problems.append(f"python {script} {flag} {value}: not one of {sorted(own[flag])}")
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name", PAGES)
def test_every_link_of_a_page_leads_to_a_file_and_its_anchor(name):
    folder, broken = os.path.dirname(os.path.join(PROJECT, name)), []
    for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", page(name), flags=re.S)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(PROJECT, name)
        if not os.path.exists(linked):
            broken.append(f"{target}: no such file")
        elif anchor and linked.endswith(".md") and anchor not in anchors(os.path.relpath(linked, PROJECT)):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{name}: " + "; ".join(broken)


@pytest.mark.parametrize("name", PAGES)
def test_a_page_for_users_names_no_issue_numbers(name):
    found = ISSUE.findall(page(name))
    assert not found, f"{name} cites {found}, which mean nothing to a student: say what was found instead"
