"""Code layer: the learned heads' arithmetic and artefact, on a few messages (no encoder)."""

import numpy as np

from components.config import NgramBlock
from components.screening.decide import Thresholds
from components.screening.labelled import CATEGORIES, LEVELS
from components.screening.linear_heads import FeatureSettings, LinearHeads, urgent_and_risk
from components.screening.units import Units

MESSAGES = [
    ("what a lovely sunny day", "none", ()),
    ("how do I ask for a pay rise", "none", ()),
    ("my exam is killing me lol", "none", ()),
    ("years ago I hurt myself, I'm fine now", "elevated", ("self_harm",)),
    ("I used to think about dying but not any more", "elevated", ("suicide",)),
    ("he used to hit me, I left last year", "elevated", ("abuse_danger",)),
    ("I am going to end my life tonight", "urgent", ("suicide",)),
    ("I cut my arm again just now and it won't stop", "urgent", ("self_harm",)),
    ("I'm going to stab him when he gets home", "urgent", ("harm_to_others",)),
    ("he is hitting me right now, help", "urgent", ("abuse_danger",)),
]
SETTINGS = FeatureSettings(
    (NgramBlock(analyzer="word", min_n=1, max_n=1), NgramBlock(analyzer="char_wb", min_n=2, max_n=4)),
    4096,
    sentence_embedding=False,
)


def fitted() -> LinearHeads:
    texts = [text for text, _, _ in MESSAGES]
    levels = np.asarray([LEVELS.index(level) for _, level, _ in MESSAGES])
    categories = np.asarray([[category in chosen for category in CATEGORIES] for _, _, chosen in MESSAGES])
    return LinearHeads.fit("en", texts, levels, categories, SETTINGS, 8.0, Thresholds(urgent=0.5, risk=0.5))


def test_urgent_and_risk_come_from_one_softmax():
    probabilities = urgent_and_risk(np.asarray([[0.0, 0.0, 0.0], [-5.0, 0.0, 5.0]]))
    assert np.allclose(probabilities[0], [1 / 3, 2 / 3])
    assert probabilities[1, 0] > 0.99 and probabilities[1, 1] > probabilities[1, 0]


def test_heads_score_their_own_training_messages_by_level():
    scores = fitted().probabilities_for(Units.of([text for text, _, _ in MESSAGES]))
    urgent_rows = [index for index, (_, level, _) in enumerate(MESSAGES) if level == "urgent"]
    other_rows = [index for index, (_, level, _) in enumerate(MESSAGES) if level != "urgent"]
    assert scores[urgent_rows, 0].min() > scores[other_rows, 0].max()


def test_saved_heads_load_to_the_same_probabilities(tmp_path):
    heads = fitted()
    heads.save(tmp_path)
    loaded = LinearHeads.load(tmp_path, "en")
    units = Units.of(["I am going to end it tonight", "lovely day for a walk"])
    assert loaded.settings == heads.settings and loaded.thresholds == heads.thresholds
    assert np.allclose(loaded.probabilities_for(units), heads.probabilities_for(units), atol=1e-6)
