"""The detector: normalise → rules + indicators → model → one `Detection` per message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from fanzha.knowledge.loader import Typology, load_typology
from fanzha.settings import PACKAGE_DIR, Settings
from fanzha.text.model import FraudTextClassifier
from fanzha.text.normalize import NormalizedText, normalize
from fanzha.text.recognizers.registry import RecognizerRegistry, default_registry
from fanzha.text.result import Detection, Evidence, Indicator, Verdict
from fanzha.text.rules import RuleEngine, RuleHit
from fanzha.text.signals import INDICATOR_FEATURES, indicator_features

MAX_EVIDENCE = 12
DENSE_CLIP = 6.0


class InvalidInput(ValueError):
    """The input cannot be examined (empty, too long, not text)."""


@dataclass(slots=True)
class Analysis:
    """Everything the model needs about one text, before scoring."""

    norm: NormalizedText
    hits: list[RuleHit]
    indicators: list[Indicator]
    dense: list[float]


def _load_generic_advice() -> dict[str, str]:
    with (PACKAGE_DIR / "knowledge" / "advice.yaml").open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh))


class Detector:
    """Examines texts; build once (loading takes well under a second) and reuse."""

    def __init__(
        self,
        typology: Typology,
        rules: RuleEngine,
        recognizers: RecognizerRegistry,
        model: FraudTextClassifier | None,
        max_text_chars: int = 1_000_000,
    ) -> None:
        self.typology = typology
        self.rules = rules
        self.recognizers = recognizers
        self.model = model
        self.max_text_chars = max_text_chars
        self.generic_advice = _load_generic_advice()
        self.dense_names = [*rules.feature_names(), *INDICATOR_FEATURES]
        if model is not None and list(model.dense_names_) != self.dense_names:
            raise ValueError(
                "model was trained with other rule/indicator features: retrain with `fanzha train`"
            )
        meta = model.metadata_ if model is not None else {}
        self.fraud_threshold = float(meta.get("fraud_threshold", 0.5))
        self.suspicious_threshold = float(meta.get("suspicious_threshold", 0.25))
        self.version = str(meta.get("version", "untrained"))

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, with_model: bool = True) -> Detector:
        settings = settings or Settings()
        typology = load_typology(settings.typology_dir)
        model = FraudTextClassifier.load(Path(settings.model_path)) if with_model else None
        return cls(typology, RuleEngine(typology), default_registry(), model, settings.max_text_chars)

    def check(self, text: object) -> str:
        """Validate one input text and return it; raise InvalidInput with a clear message otherwise."""
        if not isinstance(text, str):
            raise InvalidInput(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInput("text is empty")
        if len(text) > self.max_text_chars:
            raise InvalidInput(f"text has {len(text)} characters; the limit is {self.max_text_chars}")
        return text

    def analyze(self, text: str) -> Analysis:
        norm = normalize(text)
        hits = self.rules.match(norm.text)
        indicators = self.recognizers.analyze(norm)
        dense = [*self.rules.features(hits), *indicator_features(indicators)]
        return Analysis(norm, hits, indicators, dense)

    def detect(self, text: str) -> Detection:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[Detection]:
        """Examine a batch; every text must be valid (use `check` first for untrusted input)."""
        analyses = [self.analyze(self.check(t)) for t in texts]
        return self.score(analyses)

    def dense_matrix(self, analyses: Sequence[Analysis]) -> np.ndarray:
        dense = np.array([a.dense for a in analyses], dtype=np.float32).reshape(len(analyses), -1)
        return np.clip(dense, -DENSE_CLIP, DENSE_CLIP)

    def score(self, analyses: Sequence[Analysis]) -> list[Detection]:
        if self.model is None:
            raise RuntimeError("no model loaded")
        if not analyses:
            return []
        scores = self.model.predict_proba([a.norm.text for a in analyses], self.dense_matrix(analyses))
        types = self.model.type_classes_
        top_type = scores.types.argmax(axis=1)
        out = []
        for i, a in enumerate(analyses):
            p = float(scores.fraud[i])
            verdict: Verdict
            if p >= self.fraud_threshold:
                verdict = "fraud"
            elif p >= self.suspicious_threshold or scores.spam[i] >= 0.5:
                verdict = "suspicious"
            else:
                verdict = "normal"
            fraud_type = types[top_type[i]] if p >= self.suspicious_threshold else None
            out.append(self._result(a, verdict, round(p * 100), fraud_type))
        return out

    def _result(self, a: Analysis, verdict: Verdict, risk: int, fraud_type: str | None) -> Detection:
        if fraud_type is not None:
            advice: str | None = self.typology.advice(fraud_type)
        elif verdict == "suspicious":
            advice = self.generic_advice["spam"]
        else:
            advice = None
        if verdict == "normal":
            fraud_type = None
        return Detection(
            verdict=verdict,
            risk=risk,
            fraud_type=fraud_type,
            fraud_type_name=self.typology.name(fraud_type) if fraud_type else None,
            evidence=self._evidence(a),
            indicators=a.indicators,
            advice=advice,
            model_version=self.version,
        )

    def _evidence(self, a: Analysis) -> list[Evidence]:
        ranked = sorted(a.hits, key=lambda h: -abs(h.weight))[:MAX_EVIDENCE]
        ranked.sort(key=lambda h: h.start)
        original = a.norm.original
        out = []
        for h in ranked:
            start, end = a.norm.span(h.start, h.end)
            out.append(
                Evidence(h.rule, h.fraud_type, original[start:end], start, end, h.weight, h.description)
            )
        return out
