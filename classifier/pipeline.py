"""The one scikit-learn pipeline: normalise, word + character TF-IDF, calibrated linear SVM.

Training, cross-validation and evaluation all call :func:`build_pipeline`, so they cannot
drift apart. Serving never imports this module: :func:`export_weights` turns a fitted
pipeline into plain arrays that :mod:`classifier.scorer` reads without scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classifier.hyperparameters import CALIBRATION_FOLDS, MIN_DF, SVM_C
from classifier.normalize import normalize
from classifier.scorer import gram_table
from classifier.tokens import CHAR_NGRAMS, CharAnalyzer, Tokenizer, WordAnalyzer


def normalize_all(texts: Sequence[str]) -> list[str]:
    return [normalize(t) for t in texts]


def build_pipeline(tokenizer: Tokenizer) -> Pipeline:
    """A fresh, unfitted pipeline with the project's pinned settings."""
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(analyzer=WordAnalyzer(tokenizer), sublinear_tf=True, min_df=MIN_DF, dtype=np.float32),
            ),
            (
                "chars",
                TfidfVectorizer(analyzer=CharAnalyzer(CHAR_NGRAMS), sublinear_tf=True, min_df=MIN_DF, dtype=np.float32),
            ),
        ]
    )
    # "balanced" class weights, chosen on grouped 5-fold CV: weighting each class by
    # (n / (k * n_class)) ** a with a = 1 / 0.75 / 0.5 / 0 gave 3.9 / 5.0 / 5.9 / 7.5% missed
    # scams against 6.1 / 5.1 / 4.5 / 3.5% false alarms, a plain trade; a missed scam costs more.
    model = CalibratedClassifierCV(
        LinearSVC(C=SVM_C, class_weight="balanced", random_state=0),  # the same corpus gives the same model
        method="temperature",
        ensemble=False,
        cv=CALIBRATION_FOLDS,
    )
    return Pipeline([("normalize", FunctionTransformer(normalize_all)), ("features", features), ("model", model)])


def export_weights(pipeline: Pipeline) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Arrays and vocabularies that reproduce *pipeline*'s probabilities without sklearn."""
    union: FeatureUnion = pipeline.named_steps["features"]
    words: TfidfVectorizer = union.transformer_list[0][1]
    chars: TfidfVectorizer = union.transformer_list[1][1]
    model: CalibratedClassifierCV = pipeline.named_steps["model"]
    calibrated = model.calibrated_classifiers_[0]
    svm: LinearSVC = calibrated.estimator
    beta = float(np.asarray(calibrated.calibrators[0].beta_).reshape(-1)[0])

    def ordered(vectorizer: TfidfVectorizer) -> list[str]:
        vocab = vectorizer.vocabulary_
        out = [""] * len(vocab)
        for term, index in vocab.items():
            out[index] = term
        return out

    arrays = {
        "weights": np.ascontiguousarray(svm.coef_.T, dtype=np.float32),
        "intercept": svm.intercept_.astype(np.float32),
        "word_idf": words.idf_.astype(np.float32),
        "char_idf": chars.idf_.astype(np.float32),
        "beta": np.array([beta], dtype=np.float64),
    }
    vocab = {
        "words": ordered(words),
        "chars": ordered(chars),
        "classes": [str(model.classes_[i]) for i in svm.classes_],
    }
    # The scorer's lookup table for character grams, built here once rather than at every load.
    arrays["char_keys"], arrays["char_index"] = gram_table(vocab["chars"])
    return arrays, vocab
