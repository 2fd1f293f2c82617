"""What every binary in bin/ shares: the config flag, flag errors and the main wrapper.

A binary is flags in, one library call, exit code out: `main(program, body)` runs `body`,
prints what it returns, and turns a `SkipVaeError` into one line on stderr
(`<program>: error: <message>`) and its exit code, never a traceback.
"""

import logging as pylogging
import pathlib
import re
import sys
from collections.abc import Callable

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from skip_vae_tf import config as config_lib
from skip_vae_tf import errors

# What a config file that fails to load or an override that fails to apply raises: a
# config file is user code (syntax errors, NameErrors, failed imports, NUL bytes...).
_CONFIG_FILE_ERRORS = (Exception,)


def default_config_file(argv: list[str], configs_dir: pathlib.Path,
                        default_dataset: str) -> str:
  """configs/<dataset>.py for the --dataset on the command line, else the default's.

  Read before flag parsing because the config flag's default must exist at definition.
  """
  dataset = default_dataset
  for index, arg in enumerate(argv[1:], start=1):
    if arg.startswith("--dataset="):
      dataset = arg.split("=", 1)[1]
    elif arg == "--dataset" and index + 1 < len(argv):
      dataset = argv[index + 1]
  path = configs_dir / f"{dataset}.py"
  return str(path if path.is_file() else configs_dir / f"{default_dataset}.py")


def _config_error(argv: list[str], error: Exception) -> str:
  """One line naming the --config arguments that could not be loaded or applied."""
  config_args = " ".join(a for a in argv[1:] if a.startswith("--config")) or "--config"
  detail = " ".join(line.strip() for line in str(error).splitlines())
  return f"cannot use {config_args}: {type(error).__name__}: {detail}"


def define_config(program: str, configs_dir: pathlib.Path, default_dataset: str):
  """The `--config` flag (an ml_collections config file, default configs/<dataset>.py,
  fields overridable with --config.<path>=<value>); a file that fails to load is one line."""
  try:  # ml_collections reads the --config.* overrides from sys.argv here, at definition.
    return config_flags.DEFINE_config_file(
        "config", default_config_file(sys.argv, configs_dir, default_dataset),
        "Config file (default configs/<dataset>.py); override any field with "
        "--config.<path>=<value>.", lock_config=True)
  except _CONFIG_FILE_ERRORS as error:
    sys.exit(f"{program}: error: {_config_error(sys.argv, error)}")


def resolved_config(config_flag, **plain_flags):
  """The loaded config with its --config.* overrides and the binary's plain flags
  (`config.resolve`), validated; a config file that failed to load is a ConfigError."""
  try:
    return config_lib.resolve(
        config_flag.value, overrides=config_flags.get_override_values(flags.FLAGS["config"]),
        **plain_flags)
  except config_lib.ConfigError:
    raise
  except _CONFIG_FILE_ERRORS as error:  # The config object raises on first use.
    raise config_lib.ConfigError(_config_error(sys.argv, error)) from error


def flags_parser(program: str) -> Callable[[list[str]], list[str]]:
  """absl's flag parsing, with every failure (config files included) as one line."""
  def parse(argv: list[str]) -> list[str]:
    try:
      return flags.FLAGS(argv)
    except flags.Error as error:
      # absl shows a parser's ValueError args as a tuple: ('reason', 'value').
      detail = re.sub(r"\('([^']*)', '([^']*)'\)", r"\1 '\2'", str(error))
      sys.exit(f"{program}: error: {detail}")
    except _CONFIG_FILE_ERRORS as error:
      sys.exit(f"{program}: error: {_config_error(argv, error)}")
  return parse


def silence_tensorflow_warnings() -> None:
  """For binaries exiting on an error: the objects of a failed checkpoint restore log a page
  of warnings when collected at exit, after the one-line error."""
  pylogging.getLogger("tensorflow").setLevel(pylogging.ERROR)


def main(program: str, body: Callable[[], str]) -> Callable[[list[str]], None]:
  """An absl main: refuses stray arguments, logs at INFO, runs `body` and prints the line
  it returns; a SkipVaeError becomes `<program>: <label>: <message>` and its exit code."""
  def run(argv: list[str]) -> None:
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    try:
      message = body()
    except errors.SkipVaeError as error:
      silence_tensorflow_warnings()
      print(f"{program}: {error.label}: {error}", file=sys.stderr)
      sys.exit(error.exit_code)
    print(message)
  return run
