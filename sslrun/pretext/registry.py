from __future__ import annotations

import keras

from sslrun.registry import Registry

PRETEXTS: Registry[keras.Model] = Registry("pretext task")
