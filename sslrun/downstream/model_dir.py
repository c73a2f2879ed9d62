"""The layout of `<run dir>/model/` (written by sslrun.downstream.export, read by `sslrun-predict`); no
Keras import, so the command checks a run dir before TensorFlow loads."""

MODEL_DIR = "model"
KERAS_FILE = "model.keras"  # uint8 images -> logits, stock Keras layers only
SAVED_MODEL = "saved_model"  # TensorFlow SavedModel, for serving
INFO = "info.json"  # which classifier and why, class names, input size and channels, test accuracy
