"""Mirror-averaged frozen features for the feature evaluations (propagate, kNN, linear): worth building?

Runs the real CLI with sslrun.downstream.features.features replaced, for every module that imported it:
  none    the encoder's features of each image (sslrun today)
  mean    the mean of the features of the image and of its mirror image
  concat  both, side by side
usage: python bench/feature_flip.py {none|mean|concat} <sslrun overrides...>
Measured 2026-12-02 (bench/README.md) on one 7-epoch seed003_plus pretext:
  sslrun experiment=seed003_cifar10_colorization_plus dataset=image_folder dataset.path=<CIFAR-10 JPEG folder> \\
      stage=pretext trainer.epochs=7 trainer.warmup_epochs=1 tensorboard=false hydra.run.dir=/tmp/exp/c3p
  python bench/feature_flip.py <variant> experiment=seed003_cifar10_colorization_plus dataset=image_folder \\
      dataset.path=<same> stage=downstream pretext.from=/tmp/exp/c3p 'downstream.evals=[propagate,knn,linear]' \\
      tensorboard=false hydra.run.dir=/tmp/exp/c3d-<variant>
"""

import sys

import keras
import numpy as np
import tensorflow as tf

import sslrun.downstream.features as features_module
import sslrun.downstream.knn as knn_module
import sslrun.downstream.linear as linear_module
import sslrun.downstream.propagate as propagate_module
from sslrun.cli import main
from sslrun.data.pipeline import image_batches

VARIANTS = ("none", "mean", "concat")
plain_features = features_module.features


def with_mirror(variant: str):
    def features(encoder: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        f = plain_features(encoder, x, batch_size)
        if len(x) == 0:
            return f
        mirrored = image_batches(x, batch_size=batch_size, shuffle=False).map(lambda b: tf.reverse(b, axis=[2]))
        g = encoder.predict(mirrored, verbose=0).astype(np.float32)
        return (f + g) / 2 if variant == "mean" else np.concatenate([f, g], axis=1)

    return features


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python bench/feature_flip.py {{{'|'.join(VARIANTS)}}} <sslrun overrides...>")
    variant = sys.argv.pop(1)
    if variant != "none":
        for module in (features_module, knn_module, linear_module, propagate_module):
            module.features = with_mirror(variant)
    sys.argv[0] = "sslrun"
    main()
