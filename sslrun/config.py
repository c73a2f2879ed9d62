"""Config schemas: dataclasses registered in Hydra's ConfigStore.

Every YAML option under conf/ extends one of these schemas (its defaults list
names `/schema/<group>/<name>@_here_`), and the top-level config extends
`Config`, so a typo or a wrong type fails at composition, before any work.
Where a schema gives a default with its reason, a YAML option carries only
what differs. The pretext methods' schemas live here too, so composing a
config never loads TensorFlow; each task class names its own as `schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sslrun.plugins import import_plugins
from sslrun.registry import Registry


class Stage(Enum):
    all = "all"
    pretext = "pretext"
    downstream = "downstream"


class DataSource(Enum):
    auto = "auto"  # dataset.path, original files in known places, then tfds
    files = "files"  # original distribution files only
    tfds = "tfds"  # tensorflow-datasets only


class Pool(Enum):
    """What the pretext task trains on (labels are never read)."""

    auto = "auto"  # unlabeled_and_train if the data set has an unlabeled split, else train
    train = "train"  # the whole train split, labeled subset included
    train_excluding_labeled = "train_excluding_labeled"  # minus the labeled and validation draws (seed 000)
    unlabeled = "unlabeled"  # only the unlabeled split (STL-10's 100,000; an image folder's unlabeled/)
    unlabeled_and_train = "unlabeled_and_train"


class BadImage(Enum):
    skip = "skip"  # skip and count it in the log
    error = "error"  # stop before training, naming the file


class Precision(Enum):
    auto = "auto"  # mixed_bfloat16 where the hardware computes it natively, else float32 (sslrun/precision.py)
    float32 = "float32"
    mixed_float16 = "mixed_float16"  # GPUs with fp16 tensor cores; loss scaling in every train step
    mixed_bfloat16 = "mixed_bfloat16"  # TPUs, recent GPUs, CPUs with AVX512_BF16


class LrSchedule(Enum):
    constant = "constant"
    cosine = "cosine"  # linear warm-up over trainer.warmup_epochs, then cosine decay to 0 at the last step


class Tta(Enum):
    """Test-time augmentation of the fine-tuned classifiers' test and validation predictions."""

    none = "none"
    flip = "flip"  # the softmax averaged over each image and its mirror image (only where a mirror keeps the class)


class Strategy(Enum):
    """Where the pretext stage trains (sslrun/training/distribute.py); downstream stays on one device."""

    auto = "auto"  # MirroredStrategy over all GPUs if more than one, else the default strategy
    one_device = "one_device"  # the first GPU, or the CPU
    mirrored = "mirrored"  # all GPUs, or all logical CPUs (SSLRUN_LOGICAL_CPUS=N) without a GPU
    multi_worker = "multi_worker"  # MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG


class Objective(Enum):
    """What a run returns to Hydra's sweeper (Optuna maximises it)."""

    ssl_val_accuracy = "ssl_val_accuracy"  # selection on validation images; the test set stays unseen
    ssl_test_accuracy = "ssl_test_accuracy"


class PropagateClassifier(Enum):
    """How `propagate` classifies test images once the pool carries labels (sslrun/downstream/propagate.py)."""

    vote = "vote"  # kNN vote among the labeled graph nodes
    linear = "linear"  # a linear classifier trained on every node's label, weighted by its certainty (Iscen et al.)


class SelftrainTeacher(Enum):
    """Who pseudo-labels the pool for `selftrain` (sslrun/downstream/selftrain.py)."""

    finetune = "finetune"  # the pretrained encoder fine-tuned on the labels; confidence = its softmax maximum
    propagate = "propagate"  # the labels propagated over the pool's graph; confidence = the class's share of scores


class Draw(Enum):
    """How the labeled images are chosen from the train split (sslrun/data/splits.py)."""

    stratified = "stratified"  # at random within each class
    first = "first"  # in file order: the first of each class, or the first num_labels (seeds 000, 001, 003)
    random = "random"  # uniformly over the train split, not stratified (seed 004)
    # chosen from the pretext encoder's features of the train split, never its labels (sslrun/select/); a study
    # with one of these also runs `random` on the same budgets and repeats (results_random.csv, vs_random)
    typiclust = "typiclust"  # the most typical image of each k-means cluster (Hacohen et al. 2022)
    probcover = "probcover"  # greedy max coverage of balls of a purity-chosen radius (Yehuda et al. 2022)
    kcenter = "kcenter"  # greedy k-center coreset (Sener & Savarese 2018)


class HeadInit(Enum):
    """The kernel initializer of a task's or classifier's new head layers."""

    glorot_uniform = "glorot_uniform"  # Keras' default for Dense and Conv2D
    random_normal = "random_normal"  # N(0, 0.05): seed 001's kernel_initializer="random_normal"


class Optimizer(Enum):
    """Keras optimizers by name (sslrun/training/optim.py)."""

    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"  # with `momentum`
    rmsprop = "rmsprop"
    lamb = "lamb"


class Monitor(Enum):
    """What early stopping watches (`downstream.patience`)."""

    val_loss = "val_loss"  # validation images; the best epoch's weights are kept
    val_accuracy = "val_accuracy"
    loss = "loss"  # the labeled batches only stop training (seed 001's `accuracy`)
    accuracy = "accuracy"


class ScratchPhases(Enum):
    """How the scratch baseline trains when it has no scratch_epochs of its own (sslrun/downstream/finetune.py)."""

    same = "same"  # finetune's phases, its random encoder frozen where the pretrained one is: equal updates per layer
    all_layers = "all_layers"  # every layer in both phases (the seed documents' baselines: more encoder updates)


class Freeze(Enum):
    encoder = "encoder"  # the whole encoder is frozen in phase 1
    backbone = "backbone"  # only layers before the encoder's dense "neck" (seeds 000, 004)


# ---------------------------------------------------------------- dataset
@dataclass
class DatasetConfig:
    name: str = MISSING
    source: DataSource = DataSource.auto
    path: str | None = None
    image_size: Optional[int] = MISSING  # noqa: UP045  null (image_folder): from the images (sslrun/data/fit.py)
    channels: Optional[int] = MISSING  # noqa: UP045  null (image_folder): 1 if every image is grayscale, else 3
    num_classes: int | None = MISSING  # null: from the data (image folders)
    download: bool = True
    pool: Pool = Pool.auto
    train_limit: Optional[int] = None  # noqa: UP045  at most the first N train images (seed 001: 1000)
    test_limit: Optional[int] = None  # noqa: UP045  at most the first N test images (seed 001: 300)
    # exact and near copies among the train/unlabeled images and of test images (sslrun/data/hygiene.py)
    hygiene: Optional[bool] = None  # noqa: UP045  null: on for image folders (~3 s per 50,000 images), off for standard sets (scored on their published splits)
    drop_test_duplicates: bool = (
        False  # remove the train/unlabeled images that copy a test image, before pretext (the check runs)
    )


@dataclass
class ImageFolderDatasetConfig(DatasetConfig):
    on_bad_image: BadImage = BadImage.skip
    test_fraction: float = MISSING


@dataclass
class SyntheticDatasetConfig(DatasetConfig):
    train_size: int = MISSING
    test_size: int = MISSING
    noise: float = MISSING


# ---------------------------------------------------------------- pretext
# `pretext.from` is a Python keyword, so the field is added by hand and the
# dataclass gets no generated __init__/__repr__ (OmegaConf needs neither).
class _PretextBase:
    """What every pretext option has; each method's schema below extends it."""

    name: str = MISSING
    cache: bool = True  # reuse an identical earlier pretext stage from cache_dir (false: always train)


_PretextBase.__annotations__["from"] = Optional[str]  # noqa: UP045  (evaluated at runtime)
setattr(
    _PretextBase, "from", None
)  # a run dir (or its pretext/ dir) to reuse instead of training; for stage=downstream
PretextConfig = dataclass(init=False, repr=False, eq=False)(_PretextBase)

# pretext=<name>'s schema, stored as /schema/pretext/<name>; PRETEXTS.register checks that the task of that
# name declares it, and adds the schema of a task registered from outside sslrun (sslrun/plugins.py)
PRETEXT_SCHEMAS: Registry[type] = Registry("pretext schema")


class RotationMode(Enum):
    all = "all"  # every image in all four rotations (seeds 000, 001)
    random = "random"  # one random rotation per image (seed 004)


@PRETEXT_SCHEMAS.register("rotation")
@dataclass(init=False, repr=False, eq=False)
class RotationConfig(PretextConfig):
    mode: RotationMode = (
        RotationMode.random
    )  # random: one rotation per image per epoch (seed 004), 4x cheaper per epoch than all (seeds 000, 001)
    head_hidden: int = 0  # 0: a linear head, so the encoder itself must carry the rotation signal
    head_conv: int = (
        0  # >0: a 3x3 stride-2 conv with this many filters on the encoder's last feature map first (seed 001: 16)
    )
    head_init: HeadInit = (
        HeadInit.glorot_uniform
    )  # the head layers' kernels: glorot_uniform (Keras' default) | random_normal (seed 001's)


class ColourTarget(Enum):
    lab_ab = "lab_ab"  # the two chroma channels of CIE Lab: what the gray input lacks
    rgb = "rgb"  # seed 003's regression target


@PRETEXT_SCHEMAS.register("colorization")
@dataclass(init=False, repr=False, eq=False)
class ColorizationConfig(PretextConfig):
    target: ColourTarget = (
        ColourTarget.lab_ab
    )  # lab_ab: the chroma the gray input lacks; rgb: seed 003's regression target
    decoder_width: int = 128  # channels of the first upsampling block, halved at each x2 step


@dataclass
class ViewConfig:
    """Two-view augmentation: a preset, and overrides of its strengths (null: the preset's value)."""

    preset: str = "auto"  # auto | mnist | cifar | stl10; auto: mnist for 1 channel, stl10 from 64 px, else cifar
    crop_min: Optional[float] = None  # noqa: UP045  random resized crop: smallest fraction of the area
    flip: Optional[bool] = None  # noqa: UP045
    translate: Optional[float] = None  # noqa: UP045
    jitter: Optional[float] = None  # noqa: UP045  colour jitter strength (brightness/contrast only on 1 channel)
    jitter_prob: Optional[float] = None  # noqa: UP045
    grayscale_prob: Optional[float] = None  # noqa: UP045
    blur_prob: Optional[float] = None  # noqa: UP045
    erase_prob: Optional[float] = None  # noqa: UP045  random erasing (Zhong et al. 2017; 0 in the presets; seed000_plus: 0.5)
    size: Optional[int] = None  # noqa: UP045  side of the views in pixels (null: the image's; pretext only); smaller views train faster (globally pooled encoders)


@dataclass(init=False, repr=False, eq=False)
class TwoViewConfig(PretextConfig):
    """What every two-view method has (sslrun/pretext/twoview.py); its own schema adds the loss's parameters."""

    augment: ViewConfig = field(default_factory=ViewConfig)  # two-view augmentation: a preset plus overrides
    online_probe: bool = (
        True  # probe_accuracy: a linear classifier on labeled features each step; false: faster, same encoder
    )
    projection_hidden: int = MISSING  # each method's own: its paper's projector, scaled to small encoders
    projection_dim: int = MISSING


@PRETEXT_SCHEMAS.register("simclr")
@dataclass(init=False, repr=False, eq=False)
class SimCLRConfig(TwoViewConfig):
    projection_hidden: int = 256
    projection_dim: int = 128  # SimCLR paper: 128-d projections
    temperature: float = 0.2  # between the paper's 0.5 (CIFAR, batch 512+) and keras.io's 0.1: batches of 256 here


@PRETEXT_SCHEMAS.register("byol")
@dataclass(init=False, repr=False, eq=False)
class BYOLConfig(TwoViewConfig):
    projection_hidden: int = 512
    projection_dim: int = 128  # BYOL paper: 4096 hidden, 256 out; scaled down for small encoders
    predictor_hidden: int = 512  # the predictor MLP's hidden width (projection_dim in and out)
    ema: float = 0.99  # target decay per step; the paper's 0.996 assumes ~100k steps, runs here are a few thousand


@PRETEXT_SCHEMAS.register("barlow_twins")
@dataclass(init=False, repr=False, eq=False)
class BarlowTwinsConfig(TwoViewConfig):
    projection_hidden: int = 512
    projection_dim: int = 512  # paper: 8192; a 3-layer projector of 512 suits 128-d encoders
    lambda_offdiag: float = 0.005  # the paper's 5e-3


@PRETEXT_SCHEMAS.register("vicreg")
@dataclass(init=False, repr=False, eq=False)
class VICRegConfig(TwoViewConfig):
    projection_hidden: int = 512
    projection_dim: int = 512  # paper: 8192; scaled down with the encoders
    sim_weight: float = 25.0  # paper, section 4.1
    var_weight: float = 25.0  # paper, section 4.1
    cov_weight: float = 1.0  # paper, section 4.1


@PRETEXT_SCHEMAS.register("simsiam")
@dataclass(init=False, repr=False, eq=False)
class SimSiamConfig(TwoViewConfig):
    projection_hidden: int = 512
    projection_dim: int = 512  # paper (CIFAR): 2048 and 2048, BN on the output too; scaled down for small encoders
    predictor_hidden: int = 128  # the paper's bottleneck: a quarter of projection_dim (2048 -> 512 -> 2048)


@PRETEXT_SCHEMAS.register("moco_v3")
@dataclass(init=False, repr=False, eq=False)
class MoCoV3Config(TwoViewConfig):
    projection_hidden: int = 512
    projection_dim: int = 128  # paper: 4096 hidden, 256 out (3 layers, BN on the output); scaled down
    predictor_hidden: int = 512  # paper: 4096 (2 layers)
    temperature: float = 0.2  # the paper's ViT value and solo-learn's CIFAR one (ResNet-50: 1.0, with batch 4096)
    ema: float = 0.99  # momentum per step: the paper's 0.99 (ViT; 0.996 for ResNet-50 at ~100k steps)


@PRETEXT_SCHEMAS.register("nnclr")
@dataclass(init=False, repr=False, eq=False)
class NNCLRConfig(TwoViewConfig):
    projection_hidden: int = 512
    projection_dim: int = 128  # paper: 2048 hidden, 256 out (3 layers); scaled down
    predictor_hidden: int = 512  # paper: 4096 (2 layers)
    temperature: float = 0.1  # the paper's (section 4.1)
    queue_size: int = (
        8192  # support set of past projections; paper: 98,304 for ImageNet's 1.28M images, here ~1/8 of a 60k pool
    )


# ---------------------------------------------------------------- encoder
@dataclass
class EncoderConfig:
    name: str = MISSING
    width: float = 1.0  # channel multiplier where the encoder supports it
    input_scale: float = 1.0  # pixels reach the encoder as [0, 1] x input_scale (seed 001: 255, raw pixels)


# ---------------------------------------------------------------- downstream
@dataclass
class DownstreamConfig:
    name: str = MISSING  # the conf/downstream option it comes from
    # the label budget: exactly one of these is set
    labels_per_class: int | None = None
    num_labels: int | None = None
    label_fraction: float | None = None
    val_per_class: int = MISSING
    batch_size: int = MISSING
    label_budgets: Optional[list[Any]] = None  # noqa: UP045  a study: several budgets, numbers or "all"
    repeats: int = 3  # label draws per budget (seeded by repeat); pretext is trained once
    evals: list[str] = field(default_factory=lambda: ["finetune", "scratch"])
    linear_epochs: int = 100
    linear_lr: float = 1e-2
    knn_k: int = 20
    propagate_k: int = 10
    propagate_alpha: float = 0.99
    propagate_classifier: PropagateClassifier = PropagateClassifier.vote
    feature_flip: bool = False  # knn, linear, propagate: each image's frozen features averaged with its mirror's
    patience: int = 0  # early stopping on validation loss, in epochs; 0: off
    patience_monitor: Monitor = Monitor.val_loss
    draw: Draw = Draw.stratified
    val_split: Optional[float] = None  # noqa: UP045
    val_from_test: int = 0
    cache: bool = True  # reuse the scratch baseline's result of an identical earlier run (<cache_dir>/downstream)
    saved_model: bool = True  # model/ also holds a TensorFlow SavedModel for serving (seconds per run to write)
    write_pseudo_labels: bool = (
        False  # <run dir>/pseudo_labels.csv: model/'s class for every pool image (off: a pass over the pool)
    )
    # finetune/scratch fits in this many worker processes side by side; null: one per CPU core (at most 4) on a
    # CPU-only machine; 1: in the sslrun process (as with a parallel sweep launcher, which has its own processes)
    workers: Optional[int] = None  # noqa: UP045


@dataclass
class FinetuneConfig(DownstreamConfig):
    frozen_epochs: int = MISSING
    frozen_lr: float = MISSING
    unfrozen_epochs: int = MISSING
    unfrozen_lr: float = MISSING
    freeze: Freeze = Freeze.encoder
    head_dropout: float = 0.0
    head_init: HeadInit = HeadInit.glorot_uniform  # the new classifier's kernel
    selftrain_teacher: SelftrainTeacher = SelftrainTeacher.finetune
    selftrain_threshold: float = 0.0  # selftrain: the teacher's least confidence for a pseudo-label
    selftrain_epochs: int | None = None  # selftrain: the student's unfrozen epochs (None: unfrozen_epochs)
    optimizer: Optimizer = Optimizer.adam
    momentum: float = 0.9  # SGD only
    lr_schedule: LrSchedule = LrSchedule.constant  # per phase; cosine: from the phase's rate to 0 at its last step
    scratch_epochs: Optional[int] = None  # noqa: UP045  null: the scratch baseline gets finetune's two phases
    scratch_lr: Optional[float] = None  # noqa: UP045
    scratch_phases: ScratchPhases = ScratchPhases.same  # the fair default: the same updates to every layer
    augment: ViewConfig = field(default_factory=lambda: ViewConfig(preset="none"))
    tta: Tta = Tta.none
    steps_per_execution: int = 1  # Keras' compile(steps_per_execution=): batches per graph call (same updates)


# ---------------------------------------------------------------- trainer
@dataclass
class TrainerConfig:
    """How the pretext stage trains."""

    epochs: int = MISSING
    batch_size: int = MISSING
    optimizer: Optimizer = MISSING
    learning_rate: float = MISSING
    momentum: float = 0.9  # SGD only
    lr_schedule: LrSchedule = LrSchedule.constant
    warmup_epochs: int = 0  # cosine only
    steps_per_epoch: int | None = None  # cap per epoch, for smoke runs
    budget_minutes: Optional[float] = None  # noqa: UP045  size the epochs to this wall time (epochs: at most)
    jit_compile: bool = False
    precision: Precision = Precision.auto
    strategy: Strategy = Strategy.auto
    deterministic: bool = False
    progress: bool = True
    stop_on_collapse: bool = False  # a collapse (RankMe ~1 or std ~0) exits 3; off: a warning, a short one can recover


# ---------------------------------------------------------------- compare
@dataclass
class CompareConfig:
    """experiment=compare: the pretext methods its multirun sweeps (one job each, the same label draws)."""

    methods: list[str] = field(default_factory=lambda: ["rotation", "simclr", "vicreg"])


# ---------------------------------------------------------------- top level
@dataclass
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    pretext: PretextConfig = field(default_factory=PretextConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    seed: int = 0
    stage: Stage = Stage.all
    data_dir: str | None = None
    cache_dir: str = MISSING
    tensorboard: bool = True
    lock_timeout: float | None = None
    objective: Objective = Objective.ssl_val_accuracy


def sweep_values(values: Any) -> str:
    """`${sslrun.sweep:${compare.methods}}`: a list as a Hydra sweep ("a,b,c"), for hydra.sweeper.params."""
    items = list(values)
    if not items:
        raise ValueError(
            "compare.methods is empty: name at least two pretext methods, e.g. compare.methods=[rotation,simclr]"
        )
    return ",".join(str(v) for v in items)


def register_schemas() -> None:
    if not OmegaConf.has_resolver("sslrun.sweep"):
        OmegaConf.register_new_resolver("sslrun.sweep", sweep_values)
    cs = ConfigStore.instance()
    cs.store(name="sslrun_schema", node=Config)
    for group, name, node in [
        ("dataset", "base", DatasetConfig),
        ("dataset", "synthetic", SyntheticDatasetConfig),
        ("dataset", "image_folder", ImageFolderDatasetConfig),
        ("encoder", "base", EncoderConfig),
        ("downstream", "finetune", FinetuneConfig),
        ("trainer", "base", TrainerConfig),
    ]:
        cs.store(group=f"schema/{group}", name=name, node=node)
    import_plugins()  # SSLRUN_PLUGINS' tasks add their schemas (and load TensorFlow; sslrun's own need none here)
    for name in PRETEXT_SCHEMAS.names():
        cs.store(group="schema/pretext", name=name, node=PRETEXT_SCHEMAS.get(name))


def pretext_from(cfg: DictConfig) -> str | None:
    return cfg.pretext["from"]
