"""`sslrun-select`: which images of a run's pool to label next, chosen from its pretext encoder's features.

    sslrun-select outputs/DATE/TIME --budget 100 --strategy typiclust --out to_label/
    sslrun-select outputs/DATE/TIME --budget 100 --exclude to_label/to_label.csv --out round2/

The pool is the run's pretext pool (dataset.pool: its unlabeled/ and/or train/ images), read as the run read
it (its config, from <run dir>/.hydra/overrides.yaml); the features are the frozen-feature evaluations' (the
encoder of <run dir>/pretext/ in inference mode, under the run's dtype policy, mirror-averaged with
downstream.feature_flip). The strategy sees only those features (sslrun.select); labels are never read.
Deterministic from the run's seed and --repeat: with --repeat 0 and a pool of the train split, the picks are the
ones a study with downstream.draw=<strategy> downstream.num_labels=<budget> labels in its repeat 0.
"""

from __future__ import annotations

import argparse
import csv
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import sys
import time
from pathlib import Path

import numpy as np

from sslrun.atomic import atomic_open
from sslrun.errors import command_main
from sslrun.image_files import InputError

PROG = "sslrun-select"
SHEET = 100  # images at most in to_label.png (the first ones to label)
STRATEGIES = ("typiclust", "probcover", "kcenter", "random")  # sslrun.select.SELECTORS, without importing it

EPILOG = """\
output, in --out DIR (default <RUN_DIR>/select; each file written to a temp name, then renamed):
  to_label.csv   order,path (or order,index for a data set without files): the images to label, first first;
                 with --exclude, only the new ones
  to_label.png   a contact sheet of the first 100, numbered in that order
  train/         an empty layout: train/<class>/ for the run's classes (train/ alone if it has none), to move
                 the labeled files into; then dataset.path=DIR trains on them

exit codes: 0 ok; 2 a usage error (no run, no finished pretext stage, a budget larger than the pool, an
--exclude file naming no pool image); 74 an output could not be written; 130 interrupted.
"""


class SelectError(InputError):
    """A problem with the command's input: printed as one `sslrun-select: error: ...` line."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory whose pretext stage finished")
    parser.add_argument("--budget", type=int, required=True, help="how many images to label (new ones)")
    parser.add_argument("--strategy", default="typiclust", choices=STRATEGIES, help="default: %(default)s")
    parser.add_argument("--out", metavar="DIR", help="folder for the files (made if missing)")
    parser.add_argument(
        "--exclude",
        metavar="FILE",
        action="append",
        default=[],
        help="images labeled already, never picked again: a CSV with a path column (an earlier "
        "to_label.csv, downstream/labeled_0.csv) or one path per line; may repeat",
    )
    parser.add_argument(
        "--repeat", type=int, default=0, help="the draw's repeat, seeding it with the run's seed (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.budget < 1:
        raise SelectError(f"--budget={args.budget}: must be a positive number of images")
    return args


def run_config(run_dir: Path):
    """The run's config, composed again from its command-line overrides (Hydra's .hydra/overrides.yaml)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from sslrun.cli import conf_dir
    from sslrun.config import register_schemas
    from sslrun.help import register_help

    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise SelectError(
            f"{saved} is missing: sslrun-select reads the run's config from it; give a run directory "
            "written by `sslrun`"
        )
    overrides = [o for o in OmegaConf.load(saved) if not str(o).startswith(("hydra.", "hydra/"))]
    register_schemas()
    register_help(conf_dir())
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return compose("config", overrides=[str(o) for o in overrides])
    except Exception as err:  # Hydra's and OmegaConf's many kinds: an option this sslrun no longer has
        from sslrun.cli import one_line

        raise SelectError(f"the run's config ({saved}) does not compose with this sslrun: {one_line(err)}") from err


def read_exclude(files: list[str], pool_ids: np.ndarray, by_path: bool) -> np.ndarray:
    """Pool rows named in the --exclude files (paths compared resolved; indices for a pool without files)."""
    named: set[str] = set()
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise SelectError(f"--exclude {name}: no such file; give a CSV with a path column or a list of paths")
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        header = next(csv.reader(lines[:1]), [])
        column = "path" if by_path else "index"
        if column in header:
            rows = list(csv.DictReader(lines))
            named |= {r[column] for r in rows}
        else:
            named |= {line.strip() for line in lines}
    key = (lambda p: str(Path(p).resolve())) if by_path else str
    wanted = {key(n) for n in named}
    rows = np.array([i for i, p in enumerate(pool_ids) if key(p) in wanted], dtype=np.int64)
    if named and not len(rows):
        raise SelectError(
            f"--exclude: none of the {len(named)} images named in {', '.join(files)} is in the "
            f"run's pool of {len(pool_ids)}; give the files the run read (its dataset.path)"
        )
    return rows


def write_outputs(out: Path, picks: np.ndarray, ids: np.ndarray, by_path: bool, pool, class_names) -> list[str]:
    from sslrun.data.stack import as_stack
    from sslrun.report.plots import plot_contact_sheet

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "to_label.csv", "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["order", "path" if by_path else "index"])
        writer.writerows([k + 1, str(ids[i])] for k, i in enumerate(picks))
    shown = picks[:SHEET]
    plot_contact_sheet(
        as_stack(pool).take(shown),
        [str(k + 1) for k in range(len(shown))],
        out / "to_label.png",
        f"the first {len(shown)} of {len(picks)} images to label, in order",
    )
    (out / "train").mkdir(exist_ok=True)
    for name in class_names:  # the run's classes; a pool without them gets train/ alone, its folders are yours
        (out / "train" / name).mkdir(exist_ok=True)
    return ["to_label.csv", "to_label.png", "train/"]


def run(args: argparse.Namespace) -> int:
    from sslrun.embed_cli import read_run

    info = read_run(args.run_dir)  # a run with a finished pretext stage, checked before TensorFlow loads
    cfg = run_config(Path(args.run_dir))
    from sslrun.tfboot import import_tensorflow

    import_tensorflow()
    from sslrun.data.splits import pool_paths, pretext_pool
    from sslrun.downstream.features import features
    from sslrun.embed_cli import load_models
    from sslrun.pipeline import load_raw
    from sslrun.select import SELECTORS

    raw = load_raw(cfg)
    pool_name = str(getattr(cfg.dataset.pool, "value", cfg.dataset.pool))
    if pool_name == "train_excluding_labeled":
        pool_name = "train"  # the labeled draw is the user's to make now: every train image is a candidate
    pool, pool_name = pretext_pool(raw, pool_name, np.empty(0, np.int64))
    paths = pool_paths(raw, pool_name, np.empty(0, np.int64))
    by_path = paths is not None
    ids = paths if by_path else np.arange(len(pool))
    labeled = read_exclude(args.exclude, ids, by_path)
    encoder, _ = load_models(info)
    start = time.perf_counter()
    feats = features(encoder, pool, flip=info.feature_flip)
    embedded = time.perf_counter() - start
    picks = SELECTORS.get(args.strategy)(feats, args.budget, cfg.seed, args.repeat, labeled=labeled)
    chosen = time.perf_counter() - start - embedded
    out = Path(args.out) if args.out else Path(args.run_dir) / "select"
    written = write_outputs(out, picks, ids, by_path, pool, list(raw.class_names))
    print(
        f"{PROG}: {len(picks):,} of {len(pool):,} pool images ({pool_name}) chosen by {args.strategy} "
        f"({len(labeled):,} excluded as labeled); features {embedded:.1f}s, selection {chosen:.1f}s; wrote "
        f"{', '.join(str(out / f) for f in written)}"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command_main(
        PROG,
        lambda: run(parse_args(args)),
        SelectError,
        "interrupted (Ctrl-C); files already renamed into --out are whole",
    )


if __name__ == "__main__":
    main()
