"""The downstream evaluations as reports name and order them (no heavy imports: `sslrun-report` reads it)."""

EVAL_LABELS = {
    "finetune": "fine-tuned from pretext",
    "selftrain": "self-trained: fine-tuned on labels + teacher's pseudo-labels of the pool",
    "linear": "linear probe on pretext features",
    "knn": "kNN on pretext features",
    "propagate": "labels propagated over the unlabeled pool's pretext features",
    "scratch": "from scratch, same schedule (baseline)",
}
EVAL_ORDER = tuple(EVAL_LABELS)  # tables and plots list evaluations in this order
