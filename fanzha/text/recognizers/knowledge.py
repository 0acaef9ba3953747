"""Data files the recognisers need (brands, apps), loaded once from fanzha/knowledge/."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KNOWLEDGE_DIR = Path(__file__).resolve().parents[2] / "knowledge"


def load_yaml(name: str) -> Any:
    with (KNOWLEDGE_DIR / name).open(encoding="utf-8") as fh:
        # The C loader: same objects as yaml.safe_load, several times faster.
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@dataclass(frozen=True, slots=True)
class Brand:
    key: str
    name: str
    domains: frozenset[str]
    keywords: tuple[str, ...]
    service_numbers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BrandData:
    brands: dict[str, Brand]
    official_domains: frozenset[str]
    official_numbers: dict[str, str]
    service_numbers: dict[str, Brand]
    short_link_domains: frozenset[str]
    risky_suffixes: frozenset[str]


@functools.cache
def brand_data() -> BrandData:
    raw = load_yaml("brands.yaml")
    brands: dict[str, Brand] = {}
    for key, entry in raw["brands"].items():
        numbers = tuple(str(n) for n in entry.get("service_numbers") or ())
        brands[key] = Brand(
            key=key,
            name=str(entry["name"]),
            domains=frozenset(str(d).lower() for d in entry["domains"]),
            keywords=tuple(str(k).lower() for k in entry.get("keywords") or ()),
            service_numbers=numbers,
        )
    return BrandData(
        brands=brands,
        official_domains=frozenset(d for b in brands.values() for d in b.domains),
        official_numbers={str(k): str(v) for k, v in raw["official_numbers"].items()},
        service_numbers={n: b for b in brands.values() for n in b.service_numbers},
        short_link_domains=frozenset(str(d).lower() for d in raw["short_link_domains"]),
        risky_suffixes=frozenset(str(s).lower() for s in raw["risky_suffixes"]),
    )
