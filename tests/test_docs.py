"""The docs a user reads: a short README whose first screen gives the two commands, no
account of how the project was built, links that lead somewhere, and results quoted from
the study reports kept under docs/results/."""

import pathlib
import re

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
README = REPO_ROOT / "README.md"


def test_readme_is_short_and_opens_with_the_two_commands():
  lines = README.read_text().splitlines()
  assert len(lines) <= 300
  first_screen = "\n".join(lines[:30])
  assert "pip install -r requirements.txt -e ." in first_screen
  assert "python bin/train.py --dataset=omniglot --skip=true" in first_screen
  assert "python -m pytest -q tests" in first_screen
  ci = (REPO_ROOT / ".ci" / "run").read_text()
  assert "python -m pytest -q tests" in ci  # CI runs the README's test command.


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_docs_describe_the_project_not_its_development(path):
  text = path.read_text()
  assert not re.search(r"\bsessions?\b", text, re.IGNORECASE), path
  if path == README:
    assert not re.search(r"\b[0-9a-f]{7,40}\b", text), "commit hashes belong in git"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_lead_to_files(path):
  for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
    assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_docs_metrics_defines_every_metric_of_the_table():
  from skip_vae_tf import metric_table  # pylint: disable=g-import-not-at-top
  text = (REPO_ROOT / "docs" / "metrics.md").read_text()
  missing = [name for name in metric_table.METRICS if f"`{name}`" not in text]
  assert not missing, f"docs/metrics.md does not define {missing}"


def test_every_test_robustness_md_cites_exists():
  text = (REPO_ROOT / "docs" / "robustness.md").read_text()
  cited, current = [], None
  for file, name in re.findall(r"`(test_\w+\.py)?(?:::(\w+))?(?:\[\w+\])?`", text):
    current = file or current
    if name:
      cited.append((current, name))
  assert len(cited) > 20
  for file, name in cited:
    assert f"def {name}(" in (REPO_ROOT / "tests" / file).read_text(), f"{file}::{name}"


def _results_rows(path: pathlib.Path, heading: str) -> list[str]:
  """The body rows of the first table after `heading` in `path`."""
  text = path.read_text().split(heading, 1)[1]
  table = re.search(r"\n(\|.*\|\n)+", text).group(0)
  return table.strip().splitlines()[2:]


@pytest.mark.parametrize("path, heading", [
    (README, "## Results"), (REPO_ROOT / "docs" / "results.md", "## Reproduction status")],
    ids=["README", "results.md"])
def test_quoted_intervals_come_from_the_linked_studys_report(path, heading):
  rows = _results_rows(path, heading)
  assert rows
  for row in rows:
    studies = re.findall(r"\[(\w+)\]\((?:docs/)?results\.md#|\]\(#(\w+)-", row)
    names = {name for pair in studies for name in pair if name}
    assert names, f"row links no study: {row[:60]}"
    reports = "".join((REPO_ROOT / "docs" / "results" / name / "report.md").read_text()
                      for name in names)
    intervals = re.findall(r"[+-]\d+\.\d+ \[[+-]\d+\.\d+, [+-]\d+\.\d+\]", row)
    assert intervals, f"row quotes no interval: {row[:60]}"
    missing = [i for i in intervals if i not in reports]
    assert not missing, f"{path.name}: {missing} are in no report of {sorted(names)}"
