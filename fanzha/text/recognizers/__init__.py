"""Indicator recognisers (涉诈要素): phones, URLs, cards, IDs, IM contacts, apps, amounts, wallets…"""

from fanzha.text.recognizers.base import ContextWords, Recognizer
from fanzha.text.recognizers.registry import RecognizerRegistry, default_registry

__all__ = ["ContextWords", "Recognizer", "RecognizerRegistry", "default_registry"]
