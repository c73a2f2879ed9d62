"""`sslrun-embed`: the features a run's pretext encoder gives image files, a 2-D map of them and their nearest
neighbours.

    sslrun-embed outputs/DATE/TIME photos/ more/*.jpg --out embedding/ --map tsne

The features are the ones the run's knn evaluation votes on (sslrun.downstream.features): the encoder of
<run dir>/pretext/ in inference mode on images scaled to [0, 1] (the encoder applies its own input_scale), under
the dtype policy the run computed in (metrics.json's precision), averaged with the mirror image's when the run
set downstream.feature_flip. Images are found and decoded as `sslrun-predict` does (sslrun.image_files).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslrun.atomic import atomic_open
from sslrun.errors import command_main
from sslrun.image_files import InputError, Inputs, Ticker, decoded_batches, find_inputs, report_bad
from sslrun.report.embedding import MAPS, describe, missing_package

PROG = "sslrun-embed"
NEIGHBOURS = 8  # per query in neighbours.png
COMPLETE = "COMPLETE"  # sslrun.training.artifacts.COMPLETE, which imports Keras: checked before TensorFlow loads

EPILOG = """\
output, in --out DIR (each file written to a temp name, then renamed):
  features.npy     float32 (images, feature size): one row per readable image, in the order of paths.csv
  paths.csv        path; with the run's exported classifier (model/) also class,confidence
  map.png          the features in 2-D (--map), coloured by the predicted class (model/), else by the class
                   folder (the first folder level under a PATH folder), else in one colour
  neighbours.png   --queries images spread over the inputs, each with its 8 nearest by cosine similarity

exit codes: 0 ok (unreadable files are listed and skipped); 2 a usage error, a RUN_DIR without a finished
pretext stage, or --map umap without umap-learn; 74 an output could not be written; 130 interrupted.
"""


class EmbedError(InputError):
    """A problem with the command's input: printed as one `sslrun-embed: error: ...` line."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory whose pretext stage finished")
    parser.add_argument("paths", metavar="PATH", nargs="+", help="image files, folders (recursive) or globs")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the four files (made if missing)")
    parser.add_argument(
        "--map",
        default="pca",
        choices=MAPS,
        help="2-D map: pca (default), tsne (scikit-learn), umap (needs umap-learn)",
    )
    parser.add_argument("--queries", type=int, default=6, help="query images in neighbours.png (default: %(default)s)")
    parser.add_argument(
        "--batch-size", type=int, default=512, help="images per batch (default: %(default)s, the knn evaluation's)"
    )
    args = parser.parse_args(argv)
    for key in ("queries", "batch_size"):
        if getattr(args, key) < 1:
            raise EmbedError(f"--{key.replace('_', '-')}={getattr(args, key)}: must be a positive number")
    missing = missing_package(args.map)
    if missing:
        raise EmbedError(
            f"--map {args.map} needs the {missing} package, which is not installed: "
            f"`pip install {missing}`, or use --map " + " or --map ".join(m for m in MAPS if m != args.map)
        )
    return args


@dataclass
class Run:
    pretext_dir: Path
    input_shape: tuple[int, int, int]
    feature_flip: bool
    precision: str | None  # the dtype policy the run computed in; None: resolve it as the run did
    requested_precision: str
    model: dict[str, Any] | None  # model/info.json (+ keras_file) when the run exported a classifier


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as err:
        raise EmbedError(f"{path} cannot be read ({err}); rerun the `sslrun` command that wrote it") from err


def read_run(run_dir: str) -> Run:
    """What the command needs from a run directory, checked before TensorFlow loads."""
    from sslrun.downstream.model_dir import INFO, KERAS_FILE, MODEL_DIR
    from sslrun.predict_cli import read_info
    from sslrun.training.rundir import METRICS, RUN_KEY

    root = Path(run_dir)
    key = _json(root / RUN_KEY) if root.is_dir() else None
    if key is None:
        raise EmbedError(
            f"RUN_DIR {run_dir} is not a run directory written by `sslrun` (no {RUN_KEY}); give one, "
            "e.g. outputs/2026-01-01/12-00-00"
        )
    metrics = _json(root / METRICS) or {}
    reused = (metrics.get("pretext") or {}).get("reused_from")  # stage=downstream pretext.from=<run dir>
    found = [
        d for d in (root / "pretext", Path(reused) if reused else None) if d is not None and (d / COMPLETE).is_file()
    ]
    if not found:
        raise EmbedError(
            f"{root / 'pretext'} holds no finished pretext stage (no {COMPLETE}); sslrun-embed reads the "
            "encoder a run trained: rerun the `sslrun` command that started it, or give a finished run"
        )
    done = json.loads((found[0] / COMPLETE).read_text())
    has_model = (root / MODEL_DIR / KERAS_FILE).is_file() and (root / MODEL_DIR / INFO).is_file()
    return Run(
        found[0],
        tuple(done["input_shape"]),
        bool(key["downstream"].get("feature_flip", False)),
        metrics.get("precision"),
        key.get("trainer", {}).get("precision", "auto"),
        read_info(run_dir) if has_model else None,
    )


@dataclass
class Embedded:
    kept: np.ndarray  # indices into Inputs.files of the images that decoded
    features: np.ndarray  # (len(kept), d) float32
    probs: np.ndarray | None  # (len(kept), classes) with the run's classifier
    seconds: float


def load_models(run: Run):
    """(encoder, classifier or None), the encoder built under the run's dtype policy."""
    import keras

    from sslrun.downstream.pretrained import load_pretrained_encoder
    from sslrun.precision import dtype_policy, resolve_precision

    with dtype_policy(run.precision or resolve_precision(run.requested_precision)[0]):
        encoder, _ = load_pretrained_encoder(run.pretext_dir, run.input_shape)
    if run.model is None:
        return encoder, None
    try:
        return encoder, keras.models.load_model(run.model["keras_file"])
    except Exception as err:  # a damaged or foreign file: Keras raises many kinds
        raise EmbedError(
            f"{run.model['keras_file']} cannot be loaded ({type(err).__name__}: {err}); rerun the "
            "`sslrun` command that wrote it"
        ) from err


def embed(encoder, classifier, files: list[Path], run: Run, batch_size: int) -> Embedded:
    """Features (and the classifier's softmax) of every file that decodes, one decoding for both."""
    import tensorflow as tf

    from sslrun.downstream.features import batch_features

    size, channels = run.input_shape[:2], run.input_shape[2]
    ds = decoded_batches(files, size, channels, batch_size)
    feature_fn = batch_features(encoder, run.feature_flip)
    spec = tf.TensorSpec((None, *run.input_shape), tf.uint8)
    classify = (
        tf.function(lambda x: tf.nn.softmax(classifier(x, training=False)), input_signature=[spec])
        if classifier is not None
        else None
    )
    kept, feats, probs, ticker, start = [], [], [], Ticker(PROG, "embedding", len(files)), time.perf_counter()
    try:
        for index, images in ds:
            kept.append(index.numpy())
            feats.append(feature_fn(images))
            if classify is not None:
                probs.append(classify(images).numpy())
            ticker.advance(len(kept[-1]))
    finally:
        ticker.close()
    dim = int(encoder.output_shape[-1])
    return Embedded(
        np.concatenate(kept) if kept else np.empty(0, np.int64),
        np.concatenate(feats) if feats else np.empty((0, dim), np.float32),
        (np.concatenate(probs) if probs else None) if classify is not None else None,
        time.perf_counter() - start,
    )


def write_tables(out: Path, files: list[Path], emb: Embedded, class_names: list[str] | None) -> None:
    buffer = io.BytesIO()
    np.save(buffer, emb.features.astype(np.float32))
    with atomic_open(out / "features.npy", "wb", perms=0o644) as fh:
        fh.write(buffer.getvalue())
    with atomic_open(out / "paths.csv", "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if emb.probs is None:
            writer.writerow(["path"])
            writer.writerows([str(files[i])] for i in emb.kept)
            return
        writer.writerow(["path", "class", "confidence"])
        top = emb.probs.argmax(axis=1)
        writer.writerows(
            [str(files[i]), class_names[k], f"{p[k]:.4f}"] for i, k, p in zip(emb.kept, top, emb.probs, strict=True)
        )


def point_labels(inputs: Inputs, emb: Embedded, class_names: list[str] | None) -> tuple[list[str] | None, str]:
    """What colours the map: the predicted class, else the class folder when every image has one, else none."""
    if emb.probs is not None:
        return [class_names[k] for k in emb.probs.argmax(axis=1)], "coloured by the predicted class"
    folders = [inputs.labels[i] for i in emb.kept]
    if folders and all(f is not None for f in folders):
        return folders, "coloured by class folder"
    return None, "one colour: no classifier in the run, images not in class folders"


def draw_figures(
    out: Path, inputs: Inputs, emb: Embedded, run: Run, args: argparse.Namespace, labels: list[str] | None, colour: str
) -> list[str]:
    """map.png and neighbours.png; returns the names written."""
    from sslrun.report.embedding import project_2d
    from sslrun.report.plots import plot_embedding_map, plot_neighbours

    n = len(emb.kept)
    if n < 2:
        print(f"{PROG}: {n} readable image: no map.png or neighbours.png (they need two or more)", file=sys.stderr)
        return []
    coords = project_2d(emb.features, args.map)
    plot_embedding_map(coords, labels, out / "map.png", f"{describe(args.map)} of {n:,} images' features ({colour})")
    queries = np.unique(np.linspace(0, n - 1, min(args.queries, n)).round().astype(int))  # spread over the inputs
    near, near_sim = neighbours_of(emb.features, queries)
    shown = decode_some([inputs.files[emb.kept[i]] for i in np.concatenate([queries, near.ravel()])], run)

    def title(i: int) -> str:
        return labels[i] if labels is not None else inputs.files[emb.kept[i]].name

    titled_by = "similarity and " + (
        "file name" if labels is None else "predicted class" if emb.probs is not None else "class folder"
    )
    plot_neighbours(
        shown[: len(queries)],
        shown[len(queries) :].reshape(*near.shape, *shown.shape[1:]),
        near_sim,
        [title(q) for q in queries],
        [[title(i) for i in row] for row in near],
        out / "neighbours.png",
        titled_by,
    )
    return ["map.png", "neighbours.png"]


def neighbours_of(features: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each (queries, min(NEIGHBOURS, n - 1)): every query row's most cosine-similar
    other rows, most similar first (the knn evaluation's search)."""
    from sslrun.downstream.knn import nearest, unit

    f = unit(features)
    k = min(NEIGHBOURS, len(f) - 1)
    idx, sim = nearest(f[queries], f, k + 1)
    order = np.argsort(-sim, axis=1, kind="stable")
    idx, sim = np.take_along_axis(idx, order, 1), np.take_along_axis(sim, order, 1)
    keep = [row != q for q, row in zip(queries, idx, strict=True)]  # a query is not its own neighbour
    return (
        np.array([row[m][:k] for row, m in zip(idx, keep, strict=True)]),
        np.array([row[m][:k] for row, m in zip(sim, keep, strict=True)]),
    )


def decode_some(files: list[Path], run: Run) -> np.ndarray:
    """The few images a figure shows, decoded again (they decoded once already) rather than kept in memory."""
    import tensorflow as tf

    from sslrun.data.image_folder import decode_fn

    decode = decode_fn(run.input_shape[0], run.input_shape[2])
    return np.stack([decode(tf.io.read_file(str(f))).numpy() for f in files])


def run(args: argparse.Namespace) -> int:
    info = read_run(args.run_dir)
    names = info.model["class_names"] if info.model else None
    inputs = find_inputs(args.paths, names)
    from sslrun.tfboot import import_tensorflow

    import_tensorflow()
    encoder, classifier = load_models(info)
    emb = embed(encoder, classifier, inputs.files, info, args.batch_size)
    bad = report_bad(PROG, inputs.files, emb.kept, info.input_shape[0], info.input_shape[2])
    out = Path(args.out)
    write_tables(out, inputs.files, emb, names)
    labels, colour = point_labels(inputs, emb, names)
    figures = draw_figures(out, inputs, emb, info, args, labels, colour)
    rate = len(emb.kept) / emb.seconds if emb.seconds > 0 else float("inf")
    flip = ", averaged with the mirror images' (downstream.feature_flip)" if info.feature_flip else ""
    what = f" and classified by {info.model['eval']}" if info.model else ""
    print(
        f"{PROG}: {len(emb.kept):,} images embedded ({emb.features.shape[1]} features each{flip}){what} in "
        f"{emb.seconds:.1f}s ({rate:,.0f} images/s); {len(bad):,} unreadable skipped; {inputs.non_images:,} "
        f"non-image files ignored; wrote {', '.join(str(out / f) for f in ['features.npy', 'paths.csv', *figures])}"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command_main(
        PROG,
        lambda: run(parse_args(args)),
        EmbedError,
        "interrupted (Ctrl-C); files already renamed into --out are whole",
    )


if __name__ == "__main__":
    main()
