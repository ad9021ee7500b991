"""The docs: every TensorBoard chart they name is one a training run shows."""

import glob
import os
import re

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
