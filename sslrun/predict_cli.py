"""`sslrun-predict`: classify image files with the model a run exported to `<run dir>/model/`.

    sslrun-predict outputs/DATE/TIME photos/ more/*.jpg --out predictions.csv --top-k 3

Images of any size and mode are decoded, converted to the run's channels and resized to its input size
as the image_folder data set does in training (sslrun.data.image_folder.decode_fn).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sslrun.atomic import atomic_open
from sslrun.errors import Interrupted, SslrunError, output_error

PROG = "sslrun-predict"

EPILOG = """\
output: a CSV with one row per readable image: path,class,confidence,top_k (top_k: class:probability;...).
When every image lies in a folder named like one of the run's classes (PATH is such a folder, or its
subfolders are), the accuracy is printed and a confusion matrix drawn next to --out (<out>_confusion.png).

exit codes: 0 ok (unreadable files are listed and skipped); 2 a usage error, a RUN_DIR without a model,
or with --strict any unreadable file; 74 the output could not be written; 130 interrupted.
"""


class PredictError(SslrunError):
    """A problem with the command's input: printed as one `sslrun-predict: error: ...` line."""


@dataclass
class Inputs:
    files: list[Path] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)  # the class folder each file lies in, if any
    non_images: int = 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
        raise PredictError(f"RUN_DIR {run_dir} does not exist; give a run directory written by `sslrun`, "
                           "e.g. outputs/2026-01-01/12-00-00")
    model = root / MODEL_DIR
    if not (model / KERAS_FILE).is_file() or not (model / INFO).is_file():
        raise PredictError(f"{model} holds no exported model ({KERAS_FILE}, {INFO}); `sslrun` writes one when "
                           "downstream.evals has an evaluation that trains a classifier (finetune, scratch, "
                           "selftrain, linear): rerun it, or use stage=downstream pretext.from=<run dir>")
    try:
        info = json.loads((model / INFO).read_text())
        return {**info, "keras_file": model / KERAS_FILE}
    except (OSError, ValueError) as err:
        raise PredictError(f"{model / INFO} cannot be read ({err}); rerun the `sslrun` command that wrote it") \
            from err


def _label_of(file: Path, root: Path, classes: set[str]) -> str | None:
    if root.name in classes:
        return root.name
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 and parts[0] in classes else None


def find_inputs(paths: list[str], class_names: list[str]) -> Inputs:
    """Files given, images under folders given (any depth), glob matches; each file once, in that order."""
    from sslrun.data.image_folder import is_image, walk_files

    classes, out, seen = set(class_names), Inputs(), set()

    def add(file: Path, label: str | None) -> None:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            out.files.append(file)
            out.labels.append(label)

    for raw in paths:
        path = Path(raw)
        matches = [path] if path.exists() else [Path(m) for m in sorted(glob.glob(raw, recursive=True))]
        if not matches:
            raise PredictError(f"PATH {raw} does not exist and matches no file; give image files, folders or "
                               "a quoted glob such as 'photos/**/*.jpg'")
        for match in matches:
            if not match.is_dir():
                add(match, None)
                continue
            found = walk_files(match)
            out.non_images += sum(not is_image(f) for f in found)
            for file in (f for f in found if is_image(f)):
                add(file, _label_of(file, match, classes))
    if not out.files:
        raise PredictError(f"no image files in {', '.join(paths)} ({out.non_images} other files); images are "
                           ".jpg .jpeg .png .bmp .gif")
    return out


@dataclass
class Predictions:
    kept: np.ndarray  # indices into Inputs.files of the images that decoded
    probs: np.ndarray  # (len(kept), classes)
    seconds: float


class _Ticker:
    """A rich bar on a terminal, else a plain line about every 10% of the images."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.next_line = total, 0, total / 10
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("predicting", total=total)
            self.bar.start()

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.advance(self.task, n)
        elif self.done >= self.next_line and self.done < self.total:
            print(f"{PROG}: {self.done:,}/{self.total:,} files", file=sys.stderr)
            self.next_line += self.total / 10

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def predict(model, files: list[Path], size: tuple[int, int], channels: int, batch_size: int) -> Predictions:
    """Softmax of the model's outputs for every file that decodes; tf.data reads and decodes in parallel."""
    import tensorflow as tf

    from sslrun.data.image_folder import decode_fn

    if size[0] != size[1]:
        raise PredictError(f"the model takes {size[0]}x{size[1]} images; the decoder resizes to squares only")
    decode = decode_fn(size[0], channels)
    names = tf.constant([os.fsencode(f) for f in files])
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(files), dtype=tf.int64), names))
    # the index rides along, so the files ignore_errors() drops can be named
    ds = ds.map(lambda i, p: (i, decode(tf.io.read_file(p))), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)
    spec = tf.TensorSpec((None, size[0], size[1], channels), tf.uint8)
    infer = tf.function(lambda x: tf.nn.softmax(model(x, training=False)), input_signature=[spec])
    kept, probs, ticker, start = [], [], _Ticker(len(files)), time.perf_counter()
    try:
        for index, images in ds:
            kept.append(index.numpy())
            probs.append(infer(images).numpy())
            ticker.advance(len(kept[-1]))
    finally:
        ticker.close()
    n_classes = int(model.output_shape[-1])
    return Predictions(np.concatenate(kept) if kept else np.empty(0, np.int64),
                       np.concatenate(probs) if probs else np.empty((0, n_classes), np.float32),
                       time.perf_counter() - start)


def write_csv(out: Path, files: list[Path], pred: Predictions, class_names: list[str], top_k: int) -> None:
    with atomic_open(out, "w", perms=0o644) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "class", "confidence", "top_k"])
        for i, p in zip(pred.kept, pred.probs, strict=True):
            top = np.argsort(-p, kind="stable")[:top_k]
            writer.writerow([str(files[i]), class_names[top[0]], f"{p[top[0]]:.4f}",
                             ";".join(f"{class_names[k]}:{p[k]:.4f}" for k in top)])


def report_bad(inputs: Inputs, pred: Predictions, size: int, channels: int) -> list[Path]:
    """The files that did not decode, each named on stderr with TensorFlow's reason."""
    from sslrun.data.image_folder import why_unreadable

    bad = [inputs.files[i] for i in np.setdiff1d(np.arange(len(inputs.files)), pred.kept)]
    for file in bad:
        print(f"{PROG}: skipped {file}: {why_unreadable(file, size, channels)}", file=sys.stderr)
    return bad


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
        raise PredictError(f"{info['keras_file']} cannot be loaded ({type(err).__name__}: {err}); rerun the "
                           "`sslrun` command that wrote it") from err
    pred = predict(model, inputs.files, size, channels, args.batch_size)
    bad = report_bad(inputs, pred, size[0], channels)
    out = Path(args.out)
    write_csv(out, inputs.files, pred, names, min(args.top_k, len(names)))
    rate = len(pred.kept) / pred.seconds if pred.seconds > 0 else float("inf")
    print(f"{PROG}: {len(pred.kept):,} images predicted by {info.get('eval', 'the model')} in {pred.seconds:.1f}s "
          f"({rate:,.0f} images/s); {len(bad):,} unreadable skipped; {inputs.non_images:,} non-image files "
          f"ignored; wrote {out}")
    scored = score_folders(inputs, pred, names, out)
    if scored:
        print(f"{PROG}: {scored}")
    if bad and args.strict:
        print(f"{PROG}: error: {len(bad)} unreadable file(s), e.g. {bad[0]} (--strict)", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        sys.exit(run(parse_args(sys.argv[1:] if argv is None else argv)))
    except KeyboardInterrupt:
        err: SslrunError = Interrupted("interrupted (Ctrl-C); no CSV written")
    except OSError as os_err:
        err = output_error(os_err) or PredictError(f"{os_err.filename or 'a file'}: {os_err.strerror or os_err}")
    except SslrunError as user_err:
        err = user_err
    print(f"{PROG}: error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
