"""The pydantic model of each conf file: unknown keys refused, types strict, bounds declared.
Their JSON Schemas (`python -m jobs.config --schemas conf/schema`) help editors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
)

Text = Annotated[str, StringConstraints(min_length=1)]
TopicId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
TopicIds = Annotated[tuple[TopicId, ...], Field(strict=False)]  # a YAML list
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------------------- regions.yaml
class RegionPolicy(_Strict):
    """A region's privacy and targeting policy (SPEC section 4)."""

    chat_signals_from: Annotated[dt.date | None, Field(strict=False)] = None
    min_age: NonNegativeInt
    min_audience_size: NonNegativeInt
    honor_chat_opt_out: bool
    sensitive_suppression: Literal["conversation", "message"]
    lookback_days: PositiveInt
    half_life_days: PositiveFloat
    min_score: NonNegativeFloat
    top_k: PositiveInt
    blocked_segments: TopicIds = ()


class PolicyOverrides(_Strict):
    """A region's own `policy`: any key of `policy_defaults`, which it overrides."""

    chat_signals_from: Annotated[dt.date | None, Field(strict=False)] = None
    min_age: NonNegativeInt | None = None
    min_audience_size: NonNegativeInt | None = None
    honor_chat_opt_out: bool | None = None
    sensitive_suppression: Literal["conversation", "message"] | None = None
    lookback_days: PositiveInt | None = None
    half_life_days: PositiveFloat | None = None
    min_score: NonNegativeFloat | None = None
    top_k: PositiveInt | None = None
    blocked_segments: TopicIds | None = None


class Region(_Strict):
    countries: list[CountryCode]
    policy: PolicyOverrides = PolicyOverrides()


class RegionsFile(_Strict):
    default_region: Text
    regions: dict[Text, Region]
    policy_defaults: RegionPolicy
    iso_countries: list[CountryCode]


# -------------------------------------------------------------------------------------- taxonomy.yaml
class TopicNode(_Strict):
    name: Text
    iab_audience_id: Text
    iab_related_ids: list[Text] = []  # other IAB segments the topic also matches (SPEC section 5)
    vocab: dict[str, list[Text]]


class SensitiveCategory(_Strict):
    """Detected only to suppress: no audience id."""

    name: Text
    vocab: dict[str, list[Text]]


class Negation(_Strict):
    window: NonNegativeInt
    cues: dict[str, list[Text]]


class TaxonomyFile(_Strict):
    languages: list[Text]
    model: Text
    topics: dict[TopicId, TopicNode]
    sensitive: dict[TopicId, SensitiveCategory]
    negation: Negation


# --------------------------------------------------------------------------------------- scoring.yaml
class EngagementWeights(_Strict):
    like: NonNegativeFloat
    comment: NonNegativeFloat
    share: NonNegativeFloat
    follow: NonNegativeFloat
    search: NonNegativeFloat
    click: NonNegativeFloat
    view: NonNegativeFloat


ENGAGEMENT_EVENT_TYPES = tuple(EngagementWeights.model_fields)


class ScoringFile(_Strict):
    engagement_weights: EngagementWeights
    chat_turn_weight: NonNegativeFloat
    daily_cap_per_topic: NonNegativeFloat


# -------------------------------------------------------------------------------------- pipeline.yaml
class Profile(_Strict):
    master: Text
    landing: str
    warehouse: str
    shuffle_partitions: Annotated[PositiveInt, Field(strict=False)]  # may come from ${VAR}
    allow_dev_pseudonym_key: bool
    retention_check: bool = True
    # This profile's own Spark settings (over the file's `spark:`), and extra local jars: globs under
    # the repository, such as the object-store connector `make s3-jars` fetches.
    spark: dict[str, str | int | float | bool] = {}
    jars: list[str] = []
    name: str = ""


class Ingest(_Strict):
    timestamp_tolerance_hours: NonNegativeInt
    duplicate_lookback_days: NonNegativeInt


class Retention(_Strict):
    chat_text_retention_days: NonNegativeInt
    quarantine_retention_days: NonNegativeInt
    erasure_physical_days: NonNegativeInt
    vacuum_retention_hours: NonNegativeInt


class Quality(_Strict):
    trailing_days: NonNegativeInt
    row_count_band: Annotated[float, Field(gt=0, lt=1)]
    max_quarantine_share: NonNegativeFloat
    data_docs: str = ""


class Scheduling(_Strict):
    landing_wait_hours: Annotated[NonNegativeFloat, Field(strict=False)]
    landing_poke_seconds: Annotated[PositiveInt, Field(strict=False)]
    publish_deadline_hours: Annotated[NonNegativeFloat, Field(strict=False)]


class PipelineFile(_Strict):
    profile: Text
    profiles: dict[Text, Profile]
    spark: dict[str, str | int | float | bool] = {}
    ingest: Ingest
    retention: Retention
    scheduling: Scheduling
    quality: Quality


FILES = {
    "pipeline.yaml": PipelineFile,
    "regions.yaml": RegionsFile,
    "taxonomy.yaml": TaxonomyFile,
    "scoring.yaml": ScoringFile,
}


def write_schemas(folder: Path) -> list[Path]:
    """JSON Schema of each conf file, for editors (`# yaml-language-server: $schema=...`)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in FILES.items():
        target = folder / name.replace(".yaml", ".schema.json")
        target.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n")
        written.append(target)
    return written
