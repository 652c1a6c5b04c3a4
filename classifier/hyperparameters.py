"""The model's pinned settings, kept free of scikit-learn so the model cache key can include
them: changing one here rebuilds every cached model on its next start."""

from __future__ import annotations

from classifier.tokens import CHAR_NGRAMS, FEATURE_VERSION

#: Linear SVM regularisation. Grouped 5-fold CV on the corpus (README, "Accuracy"): 0.5 gave
#: 6.2% false alarms and 2.9% missed scams, 1.0 gave 4.9% and 3.5%, 2.0 gave 4.1% and 3.7%.
SVM_C = 1.0
#: Terms seen in fewer training messages than this are dropped.
MIN_DF = 2
#: Folds used to fit the temperature that turns SVM margins into probabilities.
CALIBRATION_FOLDS = 5


def fingerprint() -> str:
    """Everything about the model's shape that is not in its training data."""
    return f"features={FEATURE_VERSION}:chars={CHAR_NGRAMS}:C={SVM_C}:min_df={MIN_DF}:cal={CALIBRATION_FOLDS}"
