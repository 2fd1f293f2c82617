r"""Runs a study: a grid of training runs (models x knob values x seeds), their test
evaluation, and a report with tables and figures. Studies live in configs/studies/.

  python bin/study.py --study=collapse_quick_text
  python bin/study.py --study=collapse_quick_image --parallel=2
  python bin/study.py --study=paper_omniglot --shard=0/4 --folder=/shared/studies/omniglot
  python bin/study.py --study=collapse_quick_text --report_only   # Rewrite the report.
  python bin/study.py --study=remedy_cyclical_text --reuse_runs_from=studies/remedy_free_bits_text

Running the same command again skips finished runs and resumes unfinished ones from their
last checkpoint. Writes FOLDER/runs/<model>[_<knob>]_seed<s>/ (ordinary training
workdirs: `tensorboard --logdir FOLDER/runs`), FOLDER/report.md, report.json and PNGs.
Raw data come from $SKIP_VAE_DATA_DIR (or a study's data.data_dir), as for bin/train.py.
"""

import pathlib

from absl import app
from absl import flags

from skip_vae_tf import cli

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
_STUDY = flags.DEFINE_string("study", None, "A study name under configs/studies/ or a study "
                             "config file.", required=True)
_FOLDER = flags.DEFINE_string("folder", None, "Study folder (default studies/<name> under "
                              "the current directory).")
_SHARD = flags.DEFINE_string("shard", "0/1", "i/n: run every n-th run of the grid from the "
                             "i-th (machines or GPUs sharing the folder).")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Runs at once on this machine (child "
                                 "processes).", lower_bound=1)
_REUSE = flags.DEFINE_list("reuse_runs_from", [], "Other study folders: a run whose resolved "
                           "config equals one of their finished runs is copied, not "
                           "trained (the report names it).")
_REPORT = flags.DEFINE_bool("report", True, "Write the report once every run is evaluated.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Train and evaluate nothing: write "
                                 "the report from the evaluated runs in --folder (a partial "
                                 "study's report says which runs it holds).")


def study() -> str:
  from skip_vae_tf.studies import figures
  from skip_vae_tf.studies import report
  from skip_vae_tf.studies import runner
  from skip_vae_tf.studies import spec
  chosen = spec.load(_STUDY.value, REPO_ROOT)
  folder = pathlib.Path(_FOLDER.value or f"studies/{chosen.name}").absolute()
  index, count = spec.parse_shard(_SHARD.value)
  runs = spec.shard(chosen.runs(), index, count)
  parallel = min(_PARALLEL.value, len(runs)) or 1
  reuse_from = tuple(pathlib.Path(f).absolute() for f in _REUSE.value)
  if _REPORT_ONLY.value:
    path = report.write(chosen, folder, figures.write_all)
    pending = runner.pending_runs(chosen, folder)
    return (f"Report: {path}" + (f" (over the finished runs; {len(pending)} are not: "
                                 f"{', '.join(pending)})" if pending else ""))
  if parallel > 1:
    runner.run_in_children(
        lambda i, n: runner.child_argv(_STUDY.value, folder, i, n, reuse_from),
        [(index + count * j, count * parallel) for j in range(parallel)])
  else:
    runner.run_runs(chosen, folder, runs, reuse_from)
  if not _REPORT.value:
    return f"Shard {index}/{count} done"
  pending = runner.pending_runs(chosen, folder)
  if pending:
    return (f"Shard {index}/{count} done; {len(pending)} runs of the study are not finished "
            f"yet ({', '.join(pending[:4])}{', ...' if len(pending) > 4 else ''}): the "
            "report is written once they are")
  path = report.write(chosen, folder, figures.write_all)
  return f"Report: {path}; TensorBoard: tensorboard --logdir {folder / spec.RUNS_FOLDER}"


if __name__ == "__main__":
  app.run(cli.main("study.py", study), flags_parser=cli.flags_parser("study.py"))
