"""`sslrun-predict`: classify image files with the model a run exported to `<run dir>/model/`.

    sslrun-predict outputs/DATE/TIME photos/ more/*.jpg --out predictions.csv --top-k 3

Images of any size and mode are decoded, converted to the run's channels and resized to its input size
as the image_folder data set does in training (sslrun.data.image_folder.decode_fn).
"""

from __future__ import annotations

import argparse
import csv
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

PROG = "sslrun-predict"

EPILOG = """\
output: a CSV with one row per readable image: path,class,confidence,top_k (top_k: class:probability;...).
When every image lies in a folder named like one of the run's classes (PATH is such a folder, or its
subfolders are), the accuracy is printed and a confusion matrix drawn next to --out (<out>_confusion.png).

exit codes: 0 ok (unreadable files are listed and skipped); 2 a usage error, a RUN_DIR without a model,
or with --strict any unreadable file; 74 the output could not be written; 130 interrupted.
"""


class PredictError(InputError):
    """A problem with the command's input: printed as one `sslrun-predict: error: ...` line."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory holding model/")
    parser.add_argument("paths", metavar="PATH", nargs="+", help="image files, folders (recursive) or globs")
    parser.add_argument("--out", default="predictions.csv", help="CSV to write (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per image (default: %(default)s)")
    parser.add_argument("--strict", action="store_true", help="exit 2 if any file cannot be read as an image")
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch (default: %(default)s)")
    args = parser.parse_args(argv)
    for key in ("top_k", "batch_size"):
        if getattr(args, key) < 1:
            raise PredictError(f"--{key.replace('_', '-')}={getattr(args, key)}: must be a positive number")
    return args


def read_info(run_dir: str) -> dict[str, Any]:
    """model/info.json of a run, checked before TensorFlow loads."""
    from sslrun.downstream.model_dir import INFO, KERAS_FILE, MODEL_DIR

    root = Path(run_dir)
    if not root.is_dir():
        raise PredictError(
            f"RUN_DIR {run_dir} does not exist; give a run directory written by `sslrun`, "
            "e.g. outputs/2026-01-01/12-00-00"
        )
    model = root / MODEL_DIR
    if not (model / KERAS_FILE).is_file() or not (model / INFO).is_file():
        raise PredictError(
            f"{model} holds no exported model ({KERAS_FILE}, {INFO}); `sslrun` writes one when "
            "downstream.evals has an evaluation that trains a classifier (finetune, scratch, "
            "selftrain, linear): rerun it, or use stage=downstream pretext.from=<run dir>"
        )
    try:
        info = json.loads((model / INFO).read_text())
        return {**info, "keras_file": model / KERAS_FILE}
    except (OSError, ValueError) as err:
        raise PredictError(f"{model / INFO} cannot be read ({err}); rerun the `sslrun` command that wrote it") from err


@dataclass
class Predictions:
    kept: np.ndarray  # indices into Inputs.files of the images that decoded
    probs: np.ndarray  # (len(kept), classes)
    seconds: float


def predict(model, files: list[Path], size: tuple[int, int], channels: int, batch_size: int) -> Predictions:
    """Softmax of the model's outputs for every file that decodes; tf.data reads and decodes in parallel."""
    import tensorflow as tf

    ds = decoded_batches(files, size, channels, batch_size)
    spec = tf.TensorSpec((None, size[0], size[1], channels), tf.uint8)
    infer = tf.function(lambda x: tf.nn.softmax(model(x, training=False)), input_signature=[spec])
    kept, probs, ticker, start = [], [], Ticker(PROG, "predicting", len(files)), time.perf_counter()
    try:
        for index, images in ds:
            kept.append(index.numpy())
            probs.append(infer(images).numpy())
            ticker.advance(len(kept[-1]))
    finally:
        ticker.close()
    n_classes = int(model.output_shape[-1])
    return Predictions(
        np.concatenate(kept) if kept else np.empty(0, np.int64),
        np.concatenate(probs) if probs else np.empty((0, n_classes), np.float32),
        time.perf_counter() - start,
    )


def write_csv(out: Path, files: list[Path], pred: Predictions, class_names: list[str], top_k: int) -> None:
    with atomic_open(out, "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "class", "confidence", "top_k"])
        for i, p in zip(pred.kept, pred.probs, strict=True):
            top = np.argsort(-p, kind="stable")[:top_k]
            writer.writerow(
                [
                    str(files[i]),
                    class_names[top[0]],
                    f"{p[top[0]]:.4f}",
                    ";".join(f"{class_names[k]}:{p[k]:.4f}" for k in top),
                ]
            )


def score_folders(inputs: Inputs, pred: Predictions, class_names: list[str], out: Path) -> str | None:
    """Accuracy and a confusion matrix when every decoded image lies in a folder named like a class."""
    labels = [inputs.labels[i] for i in pred.kept]
    if not labels or any(label is None for label in labels):
        return None
    from sslrun.report.plots import plot_confusion_matrix

    y_true = np.array([class_names.index(label) for label in labels])
    y_pred = pred.probs.argmax(axis=1)
    figure = plot_confusion_matrix(y_true, y_pred, class_names, out.with_name(f"{out.stem}_confusion.png"))
    hits = int(np.sum(y_true == y_pred))
    return f"accuracy {hits / len(y_true):.4f} ({hits}/{len(y_true)} in class folders); confusion matrix {figure}"


def run(args: argparse.Namespace) -> int:
    info = read_info(args.run_dir)
    names, size, channels = info["class_names"], tuple(info["input_size"]), int(info["channels"])
    inputs = find_inputs(args.paths, names)
    from sslrun.tfboot import import_tensorflow

    import_tensorflow()
    import keras

    try:
        model = keras.models.load_model(info["keras_file"])
    except Exception as err:  # a damaged or foreign file: Keras raises many kinds
        raise PredictError(
            f"{info['keras_file']} cannot be loaded ({type(err).__name__}: {err}); rerun the "
            "`sslrun` command that wrote it"
        ) from err
    pred = predict(model, inputs.files, size, channels, args.batch_size)
    bad = report_bad(PROG, inputs.files, pred.kept, size[0], channels)
    out = Path(args.out)
    write_csv(out, inputs.files, pred, names, min(args.top_k, len(names)))
    rate = len(pred.kept) / pred.seconds if pred.seconds > 0 else float("inf")
    print(
        f"{PROG}: {len(pred.kept):,} images predicted by {info.get('eval', 'the model')} in {pred.seconds:.1f}s "
        f"({rate:,.0f} images/s); {len(bad):,} unreadable skipped; {inputs.non_images:,} non-image files "
        f"ignored; wrote {out}"
    )
    scored = score_folders(inputs, pred, names, out)
    if scored:
        print(f"{PROG}: {scored}")
    if bad and args.strict:
        print(f"{PROG}: error: {len(bad)} unreadable file(s), e.g. {bad[0]} (--strict)", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command_main(PROG, lambda: run(parse_args(args)), PredictError, "interrupted (Ctrl-C); no CSV written")


if __name__ == "__main__":
    main()
