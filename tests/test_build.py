"""Every Python file of the project belongs to a target in BUILD."""

import glob as globlib

from conftest import REPO_ROOT

PROJECT_DIRS = ("skip_vae_tf", "bin", "configs", "tests", "benchmarks")


def _build_sources() -> dict[str, str]:
  """Evaluates BUILD with stand-ins for the Bazel rules: {source path: target name}."""
  sources: dict[str, str] = {}

  def rule(name, srcs=(), **unused):
    for src in srcs:
      sources[src] = name

  def glob(patterns):
    return sorted(p for pattern in patterns for p in globlib.glob(pattern, root_dir=REPO_ROOT))

  namespace = {"py_library": rule, "py_binary": rule, "py_test": rule, "glob": glob,
               "package": lambda **unused: None}
  exec((REPO_ROOT / "BUILD").read_text(), namespace)  # pylint: disable=exec-used
  return sources


def test_every_python_file_has_a_target():
  sources = _build_sources()
  files = sorted(str(p.relative_to(REPO_ROOT)) for d in PROJECT_DIRS
                 for p in (REPO_ROOT / d).rglob("*.py"))
  assert files, "found no Python files"
  missing = [f for f in files if f not in sources]
  assert not missing, f"no BUILD target lists {missing}"


def test_every_listed_source_exists():
  missing = [src for src in _build_sources() if not (REPO_ROOT / src).is_file()]
  assert not missing, f"BUILD lists files that do not exist: {missing}"
