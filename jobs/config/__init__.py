"""Load and validate conf/: regions and policies, taxonomy, scoring, runtime profiles.

Each file has a pydantic model that refuses unknown keys (a typo such as `min_audiance_size` must
not fall back to a default of the policy that guards minors and small audiences). A bad file stops
a command with one line naming the file and the key, never later in the middle of a Spark job.

`python -m jobs.config --schemas conf/schema` writes the files' JSON Schemas for editors.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from jobs import REPO_ROOT
from jobs.config.files import (  # noqa: F401 - ENGAGEMENT_EVENT_TYPES and write_schemas are re-exported
    ENGAGEMENT_EVENT_TYPES,
    FILES,
    PipelineFile,
    PolicyOverrides,
    Profile,
    Quality,
    RegionPolicy,
    Retention,
    Scheduling,
    TaxonomyFile,
    write_schemas,
)
from jobs.errors import ConfigError

DEFAULT_CONF_DIR = REPO_ROOT / "conf"
_ENV_REF = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Topic:
    topic_id: str
    name: str
    sensitive: bool
    iab_audience_id: str | None
    vocab: dict[str, list[str]]


@dataclass(frozen=True)
class Config:
    """Every conf file, validated and resolved (policies merged, roots overridden, paths absolute)."""

    conf_dir: Path
    profile: Profile
    spark_conf: dict[str, str]
    regions: dict[str, RegionPolicy]
    country_region: dict[str, str]
    default_region: str
    iso_countries: frozenset[str]
    languages: list[str]
    topics: dict[str, Topic]
    negation_window: int
    negation_cues: dict[str, list[str]]
    engagement_weights: dict[str, float]
    chat_turn_weight: float
    daily_cap_per_topic: float
    timestamp_tolerance_hours: int
    duplicate_lookback_days: int
    tagger_model: str
    retention: Retention
    quality: Quality
    scheduling: Scheduling

    @property
    def landing(self) -> Path | str:
        """A local folder as a Path; an object-store URI (`s3a://...`) as the string given."""
        return _root(self.profile.landing)

    @property
    def warehouse(self) -> Path | str:
        return _root(self.profile.warehouse)

    @property
    def data_docs(self) -> Path:
        """GX project and its Data Docs site (local files): `quality.data_docs`, else beside a local
        warehouse, or `./data_docs` for one in object storage."""
        if self.quality.data_docs:
            return Path(self.quality.data_docs)
        warehouse = self.warehouse
        return Path("data_docs").absolute() if isinstance(warehouse, str) else warehouse.absolute().parent / "data_docs"

    def with_policy(self, region: str, **changes) -> Config:
        """A copy with one region's policy changed and validated (what-if runs, tests)."""
        policy = RegionPolicy.model_validate({**self.regions[region].model_dump(), **changes}, strict=False)
        return dataclasses.replace(self, regions={**self.regions, region: policy})

    def region_of(self, country: str) -> str:
        return self.country_region.get(country, self.default_region)

    @property
    def targetable_topics(self) -> list[Topic]:
        return [t for t in self.topics.values() if not t.sensitive]


def _resolve_env(node):
    if isinstance(node, str):
        return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), node)
    if isinstance(node, dict):
        return {k: _resolve_env(v) for k, v in node.items()}
    return [_resolve_env(v) for v in node] if isinstance(node, list) else node


def _problem(error: dict) -> str:
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "extra_forbidden":
        known = {name for model in _all_models() for name in model.model_fields}
        close = difflib.get_close_matches(str(error["loc"][-1]), sorted(known), n=1)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    return f"{error['msg']}, got {error['input']!r}"


def _all_models():
    seen, todo = set(), list(FILES.values()) + [PolicyOverrides]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo += [a for f in model.model_fields.values() for a in _nested(f.annotation)]
    return seen


def _nested(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _nested(arg)]


def read_file(path: Path, model=None, env: bool = False):
    """One conf file parsed and validated by its model; errors as `file: key: problem`."""
    if not path.is_file():
        raise ConfigError(path, "-", "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "-"
        raise ConfigError(path, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "-", "top level must be a mapping")
    try:
        return (model or FILES[path.name]).model_validate(_resolve_env(data) if env else data)
    except ValidationError as exc:
        # a misspelt key also shows as the right one missing: name the typo
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise ConfigError(path, ".".join(str(p) for p in error["loc"]) or "-", _problem(error)) from None


def _regions(path: Path, taxonomy: dict[str, Topic]):
    f = read_file(path)
    iso, country_region, regions = frozenset(f.iso_countries), {}, {}
    for name, region in f.regions.items():
        for country in region.countries:
            if country not in iso:
                raise ConfigError(path, f"regions.{name}.countries", f"{country!r} is not in iso_countries")
            if country in country_region:
                raise ConfigError(
                    path, f"regions.{name}.countries", f"{country} is already in region {country_region[country]}"
                )
            country_region[country] = name
        policy = f.policy_defaults.model_copy(update=region.policy.model_dump(exclude_unset=True))
        regions[name] = RegionPolicy.model_validate(policy.model_dump())
        unknown = [s for s in policy.blocked_segments if s not in taxonomy or taxonomy[s].sensitive]
        if unknown:
            raise ConfigError(path, f"regions.{name}.policy.blocked_segments", f"not targetable topic ids: {unknown}")
    if f.default_region not in regions:
        raise ConfigError(path, "default_region", f"{f.default_region!r} is not a region")
    return regions, country_region, f.default_region, iso


def _taxonomy(path: Path) -> tuple[TaxonomyFile, dict[str, Topic]]:
    f = read_file(path)
    topics = {}
    for section, sensitive in (("topics", False), ("sensitive", True)):
        for topic_id, node in getattr(f, section).items():
            if topic_id in topics:
                raise ConfigError(path, f"{section}.{topic_id}", "topic id defined twice")
            for lang in f.languages:
                if not node.vocab.get(lang):
                    raise ConfigError(path, f"{section}.{topic_id}.vocab.{lang}", "needs at least one term")
            topics[topic_id] = Topic(
                topic_id,
                node.name,
                sensitive,
                getattr(node, "iab_audience_id", None),
                {lang: node.vocab[lang] for lang in f.languages},
            )
    for lang in f.languages:
        if lang not in f.negation.cues:
            raise ConfigError(path, f"negation.cues.{lang}", "missing")
    return f, topics


def _pipeline(path: Path, profile_name: str | None, overrides: dict) -> PipelineFile:
    f = read_file(path, env=True)
    name = profile_name or os.environ.get("AUDIENCE_PROFILE") or f.profile
    if name not in f.profiles:
        raise ConfigError(path, "profile", f"unknown profile {name!r} (have: {', '.join(f.profiles)})")
    profile = f.profiles[name].model_copy(update={"name": name, **overrides})
    for key in ("landing", "warehouse"):
        if not getattr(profile, key):
            raise ConfigError(
                path, f"profiles.{name}.{key}", f"empty (set it, its environment variable, or pass --{key})"
            )
    if f.retention.vacuum_retention_hours > f.retention.erasure_physical_days * 24:
        raise ConfigError(
            path,
            "retention.vacuum_retention_hours",
            "must not exceed erasure_physical_days * 24: erased rows would outlive their deadline on disk",
        )
    if f.ingest.duplicate_lookback_days * 24 < f.ingest.timestamp_tolerance_hours:
        raise ConfigError(path, "ingest.duplicate_lookback_days", "must cover timestamp_tolerance_hours")
    return f.model_copy(update={"profile": name, "profiles": {name: profile}})


def pipeline_settings(conf_dir=None) -> PipelineFile:
    """conf/pipeline.yaml alone, validated (what a DAG file reads at parse time: the taxonomy is
    large)."""
    return read_file(_conf_dir(conf_dir) / "pipeline.yaml", env=True)


def _conf_dir(conf_dir) -> Path:
    """The conf folder: given, else $AUDIENCE_CONF, else the package's conf/."""
    return Path(conf_dir or os.environ.get("AUDIENCE_CONF") or DEFAULT_CONF_DIR)


def _root(value: str) -> Path | str:
    return value.rstrip("/") if "://" in value else Path(value)


def load_config(conf_dir=None, profile=None, landing=None, warehouse=None) -> Config:
    """Read every file of conf_dir; command-line roots override the profile's."""
    conf_dir = _conf_dir(conf_dir)
    if not conf_dir.is_dir():
        raise ConfigError(conf_dir, "-", "conf folder not found")
    overrides = {k: str(v) for k, v in (("landing", landing), ("warehouse", warehouse)) if v}
    pipe = _pipeline(conf_dir / "pipeline.yaml", profile, overrides)
    taxonomy, topics = _taxonomy(conf_dir / "taxonomy.yaml")
    regions, country_region, default_region, iso = _regions(conf_dir / "regions.yaml", topics)
    scoring = read_file(conf_dir / "scoring.yaml")
    model = taxonomy.model
    return Config(
        conf_dir=conf_dir,
        profile=pipe.profiles[pipe.profile],
        spark_conf={
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in {**pipe.spark, **pipe.profiles[pipe.profile].spark}.items()
        },
        regions=regions,
        country_region=country_region,
        default_region=default_region,
        iso_countries=iso,
        languages=taxonomy.languages,
        topics=topics,
        negation_window=taxonomy.negation.window,
        negation_cues=taxonomy.negation.cues,
        engagement_weights=scoring.engagement_weights.model_dump(),
        chat_turn_weight=scoring.chat_turn_weight,
        daily_cap_per_topic=scoring.daily_cap_per_topic,
        timestamp_tolerance_hours=pipe.ingest.timestamp_tolerance_hours,
        duplicate_lookback_days=pipe.ingest.duplicate_lookback_days,
        tagger_model=model if "://" in model or Path(model).is_absolute() else str(REPO_ROOT / model),
        retention=pipe.retention,
        quality=pipe.quality,
        scheduling=pipe.scheduling,
    )
