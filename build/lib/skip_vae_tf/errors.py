"""The project's one-line errors: every failure a user can cause or fix derives from
`SkipVaeError`, and the binaries print its message as one line and exit non-zero
(`skip_vae_tf.cli.run_main`). Each error lives beside the code that raises it; the
classes shared by several layers are here.
"""


class SkipVaeError(RuntimeError):
  """A failure the user can act on; its message is one line naming the cause and the fix.

  A binary prints `<program>: <label>: <message>` and exits with `exit_code`.
  """
  label = "error"
  exit_code = 1


class DataFileError(SkipVaeError):
  """A data file that is missing, truncated, unreadable or not the registered file."""


class DataSizeError(SkipVaeError, ValueError):
  """A size the data cannot satisfy (more examples held out than the split has...)."""
