"""The numbers Zhang & Xue (2021) report, as plain data, for the book to compare against.

Source: C. Zhang and L. Xue, "Autoencoder With Emotion Embedding for Speech Emotion
Recognition", IEEE Access 9, 2021, §III and §V:

- Tables 1-3: the layers of the encoder, the decoder and the classifier, as printed,
  with their (input, output) sizes, kernel size and stride ("K" = number of classes).
- Table 4: UA (%) on IEMOCAP of each variant, "10-fold" and "LOSO" (10-fold
  leave-one-speaker-out). Keys are our variant names (:data:`eesr_lib.variants.VARIANTS`)
  and protocol names (``kfold10``, ``loso-speaker``).
- Tables 5-8: per-class precision / recall / F1 (%) of the proposed model (AE+EE,IN):
  IEMOCAP LOSO (5), IEMOCAP 10-fold (6), EMODB 5-fold (7), EMODB 10-fold (8).
- Tables 9-12: row-normalized confusion matrices (%), rows = true class:
  IEMOCAP LOSO (9), IEMOCAP 10-fold (10), EMODB 5-fold (11), EMODB 10-fold (12).
  Tables 11 and 12 are captioned "IEMOCAP (5-fold)" and "IEMOCAP (10-fold)" in the
  paper, but they have EMODB's seven classes and the text says they are EMODB's
  ("These results correspond to the IEMOCAP (10-fold, 10-fold LOSO) and EMODB (5-fold,
  10-fold) datasets"), so they are filed under ``emodb`` here.
- Table 13: UA (%) of other methods and the proposed one on IEMOCAP.
- Table 14: WA (%) of other methods and the proposed one on EMODB: 92.2 (5-fold) and
  95.6 (10-fold).

Two inconsistencies inside the paper, kept as printed: the sadness recall of Table 5
(77.01) differs from the sadness diagonal of Table 9 (79.78); and several per-class F1
values lie below both precision and recall (e.g. EMODB 10-fold disgust: P 96.00,
R 95.00, F1 94.59), which a harmonic mean cannot do, so F1 (and probably P and R) were
presumably averaged over folds rather than computed on pooled predictions.
"""

from __future__ import annotations

# Tables 1-3: (layer, as printed, input size, output size, kernel size, stride).
TABLE1_ENCODER: list[tuple] = [
    *[(f"Conv1-{k}", f"513, 128, kernel size={k}", 513, 128, k, 1) for k in range(1, 9)],
    ("Conv2", "1537, 512, kernel size=1", 1537, 512, 1, 1),
    ("Conv3", "512, 512, kernel size=5", 512, 512, 5, 1),
    ("Conv4", "512, 512, kernel size=5, stride=2", 512, 512, 5, 2),
    ("Conv5", "512, 512, kernel size=5", 512, 512, 5, 1),
    ("Conv6", "512, 512, kernel size=5, stride=2", 512, 512, 5, 2),
    ("Conv7", "512, 512, kernel size=5", 512, 512, 5, 1),
    ("Conv8", "512, 512, kernel size=5, stride=2", 512, 512, 5, 2),
    *[(f"FC{k}", "512, 512", 512, 512, None, 1) for k in range(1, 5)],
    ("FC5", "768, 512", 768, 512, None, 1),
    ("Dropout1-6", "p=0.5", None, None, None, 1),
    ("GRU", "input_size=512, hidden_size=128 bidirectional", 512, 128, None, 1),
]
TABLE2_DECODER: list[tuple] = [
    ("Conv1", "512, 1024, kernel_size=3", 512, 1024, 3, 1),
    ("Conv2", "512, 512, kernel_size=3", 512, 512, 3, 1),
    ("Conv3", "512, 1024, kernel_size=3", 512, 1024, 3, 1),
    ("Conv4", "512, 512, kernel_size=3", 512, 512, 3, 1),
    ("Conv5", "512, 1024, kernel_size=3", 512, 1024, 3, 1),
    ("Conv6", "512, 512, kernel_size=3", 512, 512, 3, 1),
    *[(f"FC{k}", "512, 512", 512, 512, None, 1) for k in range(1, 5)],
    ("FC5", "1536, 512", 1536, 512, None, 1),
    ("FC6", "512, 513", 512, 513, None, 1),
    *[(f"Emb{k}", "(number of classes, 512)", "K", 512, None, 1) for k in range(1, 6)],
    ("GRU", "input_size=512, hidden_size=256, bidirectional", 512, 256, None, 1),
]
TABLE3_CLASSIFIER: list[tuple] = [
    ("Self-attention", "num_heads 1 (Best Performance)", None, None, None, 1),
    ("FC1", "2478, 1024", 2478, 1024, None, 1),
    ("FC2", "1024, 512", 1024, 512, None, 1),
    ("FC3", "512, 128", 512, 128, None, 1),
    ("FC4", "128, number of classes", 128, "K", None, 1),
    ("Dropout1-2", "p=0.5", None, None, None, 1),
]

# Table 4 row names as printed (subscripts flattened), keyed by our variant names.
VARIANT_NAMES: dict[str, str] = {
    "is10+svm": "IS10+SVM",
    "ae-os": "AE-OS",
    "ae-os+ee+in": "AE-OS,+EE,IN",
    "ae": "AE",
    "ae+ee": "AE+EE",
    "ae+in": "AE+IN",
    "ae+ee+in": "AE+EE,IN (proposed)",
}

# Table 4: UA (%) on IEMOCAP. None: not reported ("--" in the paper).
TABLE4_UA_IEMOCAP: dict[str, dict[str, float | None]] = {
    "is10+svm": {"kfold10": None, "loso-speaker": 58.6},
    "ae-os": {"kfold10": 66.17, "loso-speaker": 59.27},
    "ae-os+ee+in": {"kfold10": 68.10, "loso-speaker": 62.11},
    "ae": {"kfold10": 69.98, "loso-speaker": 63.9},
    "ae+ee": {"kfold10": 71.0, "loso-speaker": 64.9},
    "ae+in": {"kfold10": 70.55, "loso-speaker": 66.34},
    "ae+ee+in": {"kfold10": 71.2, "loso-speaker": 66.7},
}


def table4_gap(with_: str, without: str, protocol: str) -> float:
    """The paper's Table 4 gap in UA points (``with_`` minus ``without``) on IEMOCAP under ``protocol``."""
    return TABLE4_UA_IEMOCAP[with_][protocol] - TABLE4_UA_IEMOCAP[without][protocol]


# Tables 5-8: per-class precision, recall, F1 (%) of AE+EE,IN. Key: (dataset, protocol).
PER_CLASS: dict[tuple[str, str], dict] = {
    ("iemocap", "loso-speaker"): {
        "table": 5,
        "precision": {"anger": 72.87, "happiness": 66.12, "neutral": 63.37, "sadness": 58.95},
        "recall": {"anger": 70.90, "happiness": 59.79, "neutral": 56.41, "sadness": 77.01},
        "f1": {"anger": 71.64, "happiness": 62.23, "neutral": 59.14, "sadness": 66.10},
    },
    ("iemocap", "kfold10"): {
        "table": 6,
        "precision": {"anger": 75.69, "happiness": 69.75, "neutral": 68.57, "sadness": 69.10},
        "recall": {"anger": 74.65, "happiness": 65.68, "neutral": 66.30, "sadness": 78.20},
        "f1": {"anger": 74.94, "happiness": 67.53, "neutral": 67.20, "sadness": 73.22},
    },
    ("emodb", "kfold5"): {
        "table": 7,
        "precision": {
            "anger": 90.44,
            "boredom": 97.00,
            "disgust": 96.00,
            "fear": 94.07,
            "happiness": 88.41,
            "neutral": 90.80,
            "sadness": 92.29,
        },
        "recall": {
            "anger": 92.57,
            "boredom": 90.84,
            "disgust": 93.81,
            "fear": 95.37,
            "happiness": 77.77,
            "neutral": 96.92,
            "sadness": 97.01,
        },
        "f1": {
            "anger": 91.43,
            "boredom": 93.41,
            "disgust": 94.42,
            "fear": 94.64,
            "happiness": 82.64,
            "neutral": 93.35,
            "sadness": 94.21,
        },
    },
    ("emodb", "kfold10"): {
        "table": 8,
        "precision": {
            "anger": 93.96,
            "boredom": 96.78,
            "disgust": 96.00,
            "fear": 95.66,
            "happiness": 94.48,
            "neutral": 98.75,
            "sadness": 97.22,
        },
        "recall": {
            "anger": 96.40,
            "boredom": 95.79,
            "disgust": 95.00,
            "fear": 98.33,
            "happiness": 87.86,
            "neutral": 93.64,
            "sadness": 100.00,
        },
        "f1": {
            "anger": 95.13,
            "boredom": 96.10,
            "disgust": 94.59,
            "fear": 96.73,
            "happiness": 90.57,
            "neutral": 95.58,
            "sadness": 98.50,
        },
    },
}

_IEMOCAP_LABELS = ["anger", "happiness", "neutral", "sadness"]
_EMODB_LABELS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]

# Tables 9-12: confusion matrices in % of each true class (rows), columns = predicted.
CONFUSION_PCT: dict[tuple[str, str], dict] = {
    ("iemocap", "loso-speaker"): {
        "table": 9,
        "caption": "Confusion matrix on IEMOCAP (10-fold LOSO)",
        "labels": _IEMOCAP_LABELS,
        "rows": [
            [70.90, 14.99, 11.41, 2.70],
            [10.28, 59.79, 16.79, 13.14],
            [8.46, 17.38, 56.41, 17.75],
            [1.60, 6.33, 12.29, 79.78],
        ],
    },
    ("iemocap", "kfold10"): {
        "table": 10,
        "caption": "Confusion matrix on IEMOCAP (10-fold)",
        "labels": _IEMOCAP_LABELS,
        "rows": [
            [74.65, 13.75, 9.13, 2.46],
            [8.78, 65.68, 15.27, 10.26],
            [6.54, 14.58, 66.30, 12.58],
            [2.27, 6.90, 12.63, 78.20],
        ],
    },
    ("emodb", "kfold5"): {
        "table": 11,
        "caption": 'Confusion matrix on "IEMOCAP (5-fold)" as printed; the 7 classes are EMODB\'s',
        "labels": _EMODB_LABELS,
        "rows": [
            [92.57, 0.00, 0.83, 0.77, 5.82, 0.00, 0.00],
            [0.00, 90.84, 1.43, 0.00, 0.00, 6.40, 1.33],
            [0.00, 0.00, 93.81, 3.33, 0.00, 2.86, 0.00],
            [0.00, 0.00, 0.00, 95.37, 0.00, 1.43, 3.21],
            [17.64, 0.00, 0.00, 3.48, 77.77, 1.11, 0.00],
            [0.00, 3.08, 0.00, 0.00, 0.00, 96.92, 0.00],
            [0.00, 1.18, 0.00, 0.00, 0.00, 1.82, 97.01],
        ],
    },
    ("emodb", "kfold10"): {
        "table": 12,
        "caption": 'Confusion matrix on "IEMOCAP (10-fold)" as printed; the 7 classes are EMODB\'s',
        "labels": _EMODB_LABELS,
        "rows": [
            [96.40, 0.00, 1.11, 0.00, 2.49, 0.00, 0.00],
            [0.00, 95.79, 1.43, 0.00, 0.00, 1.67, 1.11],
            [0.00, 1.67, 95.00, 3.33, 0.00, 0.00, 0.00],
            [0.00, 0.00, 0.00, 98.33, 0.00, 0.00, 1.67],
            [10.14, 0.00, 0.00, 2.00, 87.86, 0.00, 0.00],
            [0.00, 3.25, 0.00, 1.11, 2.00, 93.64, 0.00],
            [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 100.00],
        ],
    },
}

# Table 13: (method, validation setting, UA %) on IEMOCAP; "[n]" are the paper's references.
TABLE13_IEMOCAP_UA: list[tuple[str, str, float]] = [
    ("[62]", "10-fold LOSO", 60.9),
    ("[63]", "10-fold LOSO", 57.4),
    ("[64]", "10-fold", 61.3),
    ("[64]", "10-fold LOSO", 62.4),
    ("[29]", "10-fold LOSO", 64.8),
    ("[65]", "10-fold LOSO", 64.2),
    ("[66]", "10-fold LOSO", 62.8),
    ("[67]", "10-fold LOSO", 59.54),
    ("[68]", "10-fold", 68.8),
    ("Proposed Method", "10-fold LOSO", 66.7),
    ("Proposed Method", "10-fold", 71.2),
]

# Table 14: (method, validation setting, WA %) on EMODB.
TABLE14_EMODB_WA: list[tuple[str, str, float]] = [
    ("[69]", "10-fold", 74.6),
    ("[18]", "10-fold", 72.4),
    ("[70]", "10-fold", 83.42),
    ("[71]", "10-fold", 78.48),
    ("[72]", "5-fold", 76.06),
    ("Proposed Method", "5-fold", 92.2),
    ("Proposed Method", "10-fold", 95.6),
]

# The proposed model's EMODB WA (%) by our protocol name (Table 14).
EMODB_WA: dict[str, float] = {"kfold5": 92.2, "kfold10": 95.6}

# The paper's validation-setting names for our protocol names.
SETTING_NAMES: dict[str, str] = {"kfold5": "5-fold", "kfold10": "10-fold", "loso-speaker": "10-fold LOSO"}

# Open corpora that stand in for one the paper used: nEMO has IEMOCAP's four classes, in the same
# order and with the same names, so the paper's IEMOCAP tables are set beside nEMO's numbers value
# by value. A stand-in is not the corpus (language, size, recording), and the book says so.
STAND_INS: dict[str, str] = {"nemo": "iemocap"}


def reference_corpus(name: str) -> str:
    """The corpus whose published numbers ``name``'s results are compared with (itself, or what it stands in for)."""
    return STAND_INS.get(name, name)


def reference_key(name: str, protocol: str) -> tuple[str, str]:
    """The key of :data:`PER_CLASS` / :data:`CONFUSION_PCT` that results on ``(name, protocol)`` are set beside."""
    return reference_corpus(name), protocol
