"""Image files named on a command line (`sslrun-predict`, `sslrun-embed`): found, decoded in parallel,
the unreadable ones named.

Files, folders (any depth) and globs, each file once, in the order given; decoded, converted to the run's
channels and resized to its input size as the image_folder data set does in training
(sslrun.data.image_folder.decode_fn). No TensorFlow import until decoding starts.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sslrun.errors import SslrunError


class InputError(SslrunError):
    """A problem with a command's input: printed as one `<prog>: error: ...` line."""


@dataclass
class Inputs:
    files: list[Path] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)  # the class folder each file lies in, if any
    non_images: int = 0


def _label_of(file: Path, root: Path, classes: set[str] | None) -> str | None:
    """The class folder of a file found under the folder `root`: `root` itself when it is named like a class,
    else its first subfolder named like one; with no class names known, any first subfolder."""
    if classes is not None and root.name in classes:
        return root.name
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 and (classes is None or parts[0] in classes) else None


def find_inputs(paths: list[str], class_names: list[str] | None) -> Inputs:
    """Files given, images under folders given (any depth), glob matches; each file once, in that order.
    class_names: the run's classes, which name the class folders (None: any subfolder is a class folder)."""
    from sslrun.data.image_folder import is_image, walk_files

    classes, out, seen = (None if class_names is None else set(class_names)), Inputs(), set()

    def add(file: Path, label: str | None) -> None:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            out.files.append(file)
            out.labels.append(label)

    for raw in paths:
        path = Path(raw)
        matches = [path] if path.exists() else [Path(m) for m in sorted(glob.glob(raw, recursive=True))]
        if not matches:
            raise InputError(
                f"PATH {raw} does not exist and matches no file; give image files, folders or "
                "a quoted glob such as 'photos/**/*.jpg'"
            )
        for match in matches:
            if not match.is_dir():
                add(match, None)
                continue
            found = walk_files(match)
            out.non_images += sum(not is_image(f) for f in found)
            for file in (f for f in found if is_image(f)):
                add(file, _label_of(file, match, classes))
    if not out.files:
        raise InputError(
            f"no image files in {', '.join(paths)} ({out.non_images} other files); images are .jpg .jpeg .png .bmp .gif"
        )
    return out


def decoded_batches(files: list[Path], size: tuple[int, int], channels: int, batch_size: int):
    """tf.data of (indices into `files`, uint8 images (n, H, W, C)) for every file that decodes; read and
    decoded in parallel, in order. The index rides along, so the files ignore_errors() drops can be named."""
    import tensorflow as tf

    from sslrun.data.image_folder import decode_fn

    if size[0] != size[1]:
        raise InputError(f"the run takes {size[0]}x{size[1]} images; the decoder resizes to squares only")
    decode = decode_fn(size[0], channels)
    names = tf.constant([os.fsencode(f) for f in files])
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(files), dtype=tf.int64), names))
    ds = ds.map(lambda i, p: (i, decode(tf.io.read_file(p))), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)


def report_bad(prog: str, files: list[Path], kept, size: int, channels: int) -> list[Path]:
    """The files whose indices are not in `kept` (they did not decode), each named on stderr with
    TensorFlow's reason."""
    import numpy as np

    from sslrun.data.image_folder import why_unreadable

    bad = [files[i] for i in np.setdiff1d(np.arange(len(files)), kept)]
    for file in bad:
        print(f"{prog}: skipped {file}: {why_unreadable(file, size, channels)}", file=sys.stderr)
    return bad


class Ticker:
    """A rich bar on a terminal, else a plain line about every 10% of the images."""

    def __init__(self, prog: str, what: str, total: int) -> None:
        self.prog, self.total, self.done, self.next_line = prog, total, 0, total / 10
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task(what, total=total)
            self.bar.start()

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.advance(self.task, n)
        elif self.done >= self.next_line and self.done < self.total:
            print(f"{self.prog}: {self.done:,}/{self.total:,} files", file=sys.stderr)
            self.next_line += self.total / 10

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
