"""Load and validate conf/: regions and policies, taxonomy, scoring, runtime profiles.

Everything is checked at start so that a bad file stops a command with one line naming the file
and the key, never later in the middle of a Spark job.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from jobs import REPO_ROOT
from jobs.errors import ConfigError

DEFAULT_CONF_DIR = REPO_ROOT / "conf"
ENGAGEMENT_EVENT_TYPES = ("like", "comment", "share", "follow", "search", "click", "view")
SUPPRESSION_MODES = ("conversation", "message")
_ENV_REF = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class RegionPolicy:
    chat_signals_from: dt.date | None
    min_age: int
    min_audience_size: int
    honor_chat_opt_out: bool
    sensitive_suppression: str
    lookback_days: int
    half_life_days: float
    min_score: float
    top_k: int
    blocked_segments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topic:
    topic_id: str
    name: str
    sensitive: bool
    iab_audience_id: str | None
    vocab: dict[str, list[str]]


@dataclass(frozen=True)
class Profile:
    name: str
    master: str
    landing: str
    warehouse: str
    shuffle_partitions: int
    allow_dev_pseudonym_key: bool
    retention_check: bool = True


@dataclass
class Config:
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
    tagger_model: str = ""
    retention: dict[str, int] = field(default_factory=dict)
    quality: dict = field(default_factory=dict)

    @property
    def landing(self) -> Path:
        return Path(self.profile.landing)

    @property
    def warehouse(self) -> Path:
        return Path(self.profile.warehouse)

    @property
    def data_docs(self) -> Path:
        """GX project and its Data Docs site: `quality.data_docs`, else beside the warehouse."""
        return Path(self.quality.get("data_docs") or self.warehouse.absolute().parent / "data_docs")

    def region_of(self, country: str) -> str:
        return self.country_region.get(country, self.default_region)

    @property
    def targetable_topics(self) -> list[Topic]:
        return [t for t in self.topics.values() if not t.sensitive]


class _Reader:
    """Typed access to one YAML file that reports errors as `file: key: problem`."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise ConfigError(path, "-", "file not found")
        try:
            self.data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else "-"
            raise ConfigError(path, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(self.data, dict):
            raise ConfigError(path, "-", "top level must be a mapping")

    def fail(self, key, problem):
        raise ConfigError(self.path, key, problem)

    def get(self, node, key, kind, where, required=True, default=None):
        full = f"{where}.{key}" if where else key
        if not isinstance(node, dict):
            self.fail(where or "-", "must be a mapping")
        if key not in node or node[key] is None:
            if required:
                self.fail(full, "missing")
            return default
        value = _resolve_env(node[key]) if isinstance(node[key], str) else node[key]
        return _coerce(self, full, value, kind)


def _resolve_env(text: str) -> str:
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), text)


def _coerce(reader, key, value, kind):
    if kind == "date":
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            reader.fail(key, f"expected a date YYYY-MM-DD, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            reader.fail(key, f"expected a whole number >= 0, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            reader.fail(key, f"expected a number >= 0, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            reader.fail(key, f"expected true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, (str, int)) or str(value) == "":
            reader.fail(key, f"expected a non-empty string, got {value!r}")
        return str(value)
    if kind == "list":
        if not isinstance(value, list):
            reader.fail(key, f"expected a list, got {type(value).__name__}")
        return value
    if kind == "dict":
        if not isinstance(value, dict):
            reader.fail(key, f"expected a mapping, got {type(value).__name__}")
        return value
    raise AssertionError(kind)


def _load_policy(reader, node, where, base=None):
    base = base or {}
    def pick(key, kind):
        if isinstance(node, dict) and key in node:
            return reader.get(node, key, kind, where, required=False)
        if key in base:
            return base[key]
        return reader.get(node, key, kind, where)
    policy = dict(
        chat_signals_from=pick("chat_signals_from", "date"),
        min_age=pick("min_age", "int"),
        min_audience_size=pick("min_audience_size", "int"),
        honor_chat_opt_out=pick("honor_chat_opt_out", "bool"),
        sensitive_suppression=pick("sensitive_suppression", "str"),
        lookback_days=pick("lookback_days", "int"),
        half_life_days=pick("half_life_days", "float"),
        min_score=pick("min_score", "float"),
        top_k=pick("top_k", "int"),
        blocked_segments=tuple(pick("blocked_segments", "list") or ()),
    )
    if policy["sensitive_suppression"] not in SUPPRESSION_MODES:
        reader.fail(f"{where}.sensitive_suppression", f"must be one of {', '.join(SUPPRESSION_MODES)}")
    for key in ("lookback_days", "top_k", "half_life_days"):
        if not policy[key]:
            reader.fail(f"{where}.{key}", "must be greater than 0")
    return policy


def _load_regions(path: Path):
    r = _Reader(path)
    iso = r.get(r.data, "iso_countries", "list", "")
    bad = [c for c in iso if not (isinstance(c, str) and re.fullmatch(r"[A-Z]{2}", c))]
    if bad:
        r.fail("iso_countries", f"not ISO 3166-1 alpha-2 codes: {bad[:5]}")
    iso = frozenset(iso)
    default_region = r.get(r.data, "default_region", "str", "")
    defaults_node = r.get(r.data, "policy_defaults", "dict", "")
    defaults = {}
    for key in ("min_age", "min_audience_size", "lookback_days", "top_k"):
        defaults[key] = r.get(defaults_node, key, "int", "policy_defaults")
    for key in ("half_life_days", "min_score"):
        defaults[key] = r.get(defaults_node, key, "float", "policy_defaults")
    defaults["honor_chat_opt_out"] = r.get(defaults_node, "honor_chat_opt_out", "bool", "policy_defaults")
    defaults["sensitive_suppression"] = r.get(defaults_node, "sensitive_suppression", "str", "policy_defaults")
    defaults["chat_signals_from"] = r.get(defaults_node, "chat_signals_from", "date", "policy_defaults",
                                          required=False)
    defaults["blocked_segments"] = r.get(defaults_node, "blocked_segments", "list", "policy_defaults",
                                         required=False) or []
    regions, country_region = {}, {}
    for name, node in r.get(r.data, "regions", "dict", "").items():
        where = f"regions.{name}"
        countries = r.get(node, "countries", "list", where)
        for country in countries:
            if country not in iso:
                r.fail(f"{where}.countries", f"{country!r} is not in iso_countries")
            if country in country_region:
                r.fail(f"{where}.countries", f"{country} is already in region {country_region[country]}")
            country_region[country] = name
        policy_node = node.get("policy") or {}
        regions[name] = RegionPolicy(**_load_policy(r, policy_node, f"{where}.policy", defaults))
    if default_region not in regions:
        r.fail("default_region", f"{default_region!r} is not a region")
    return regions, country_region, default_region, iso


def _load_taxonomy(path: Path):
    r = _Reader(path)
    languages = r.get(r.data, "languages", "list", "")
    topics = {}
    for section, sensitive in (("topics", False), ("sensitive", True)):
        for topic_id, node in r.get(r.data, section, "dict", "").items():
            where = f"{section}.{topic_id}"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(topic_id)):
                r.fail(where, "topic ids are lower_snake_case")
            if topic_id in topics:
                r.fail(where, "topic id defined twice")
            vocab = r.get(node, "vocab", "dict", where)
            for lang in languages:
                terms = r.get(vocab, lang, "list", f"{where}.vocab")
                if not terms or not all(isinstance(t, str) and t.strip() for t in terms):
                    r.fail(f"{where}.vocab.{lang}", "needs at least one non-empty term")
            topics[topic_id] = Topic(
                topic_id=topic_id,
                name=r.get(node, "name", "str", where),
                sensitive=sensitive,
                iab_audience_id=None if sensitive else r.get(node, "iab_audience_id", "str", where),
                vocab={lang: [str(t) for t in vocab[lang]] for lang in languages},
            )
    negation = r.get(r.data, "negation", "dict", "")
    cues = r.get(negation, "cues", "dict", "negation")
    for lang in languages:
        r.get(cues, lang, "list", "negation.cues")
    model = r.get(r.data, "model", "str", "")
    if "://" not in model and not Path(model).is_absolute():
        model = str(REPO_ROOT / model)
    return languages, topics, r.get(negation, "window", "int", "negation"), cues, model


def _load_scoring(path: Path):
    r = _Reader(path)
    weights_node = r.get(r.data, "engagement_weights", "dict", "")
    weights = {e: r.get(weights_node, e, "float", "engagement_weights") for e in ENGAGEMENT_EVENT_TYPES}
    unknown = set(weights_node) - set(ENGAGEMENT_EVENT_TYPES)
    if unknown:
        r.fail("engagement_weights", f"unknown event types {sorted(unknown)}")
    return (weights, r.get(r.data, "chat_turn_weight", "float", ""),
            r.get(r.data, "daily_cap_per_topic", "float", ""))


def _load_pipeline(path: Path, profile_name: str | None):
    r = _Reader(path)
    profiles = r.get(r.data, "profiles", "dict", "")
    name = profile_name or os.environ.get("AUDIENCE_PROFILE") or r.get(r.data, "profile", "str", "")
    if name not in profiles:
        r.fail("profile", f"unknown profile {name!r} (have: {', '.join(profiles)})")
    node, where = profiles[name], f"profiles.{name}"
    profile = Profile(
        name=name,
        master=r.get(node, "master", "str", where),
        landing=r.get(node, "landing", "str", where),
        warehouse=r.get(node, "warehouse", "str", where),
        shuffle_partitions=r.get(node, "shuffle_partitions", "int", where),
        allow_dev_pseudonym_key=r.get(node, "allow_dev_pseudonym_key", "bool", where),
        retention_check=r.get(node, "retention_check", "bool", where),
    )
    spark_conf = {str(k): str(v) for k, v in (r.get(r.data, "spark", "dict", "", required=False) or {}).items()}
    ingest = r.get(r.data, "ingest", "dict", "")
    retention_node = r.get(r.data, "retention", "dict", "")
    retention = {k: r.get(retention_node, k, "int", "retention")
                 for k in ("chat_text_retention_days", "quarantine_retention_days", "erasure_physical_days",
                           "vacuum_retention_hours")}
    if retention["vacuum_retention_hours"] > retention["erasure_physical_days"] * 24:
        r.fail("retention.vacuum_retention_hours", "must not exceed erasure_physical_days * 24: erased rows "
                                                   "would outlive their deadline on disk")
    tolerance = r.get(ingest, "timestamp_tolerance_hours", "int", "ingest")
    lookback = r.get(ingest, "duplicate_lookback_days", "int", "ingest")
    if lookback * 24 < tolerance:
        r.fail("ingest.duplicate_lookback_days", "must cover timestamp_tolerance_hours")
    q = r.get(r.data, "quality", "dict", "")
    quality = {"trailing_days": r.get(q, "trailing_days", "int", "quality"),
               "row_count_band": r.get(q, "row_count_band", "float", "quality"),
               "max_quarantine_share": r.get(q, "max_quarantine_share", "float", "quality"),
               "data_docs": _resolve_env(str(q.get("data_docs") or ""))}
    if not 0 < quality["row_count_band"] < 1:
        r.fail("quality.row_count_band", "must lie between 0 and 1 (0.5 allows half to twice the trailing mean)")
    return profile, spark_conf, tolerance, lookback, retention, quality


def load_config(conf_dir=None, profile=None, landing=None, warehouse=None) -> Config:
    """Read every file of conf_dir; command-line roots override the profile's."""
    conf_dir = Path(conf_dir or os.environ.get("AUDIENCE_CONF") or DEFAULT_CONF_DIR)
    if not conf_dir.is_dir():
        raise ConfigError(conf_dir, "-", "conf folder not found")
    prof, spark_conf, tolerance, dup_lookback, retention, quality = _load_pipeline(conf_dir / "pipeline.yaml", profile)
    overrides = {k: str(v) for k, v in (("landing", landing), ("warehouse", warehouse)) if v}
    if overrides:
        prof = Profile(**{**prof.__dict__, **overrides})
    for key in ("landing", "warehouse"):
        if not getattr(prof, key):
            raise ConfigError(conf_dir / "pipeline.yaml", f"profiles.{prof.name}.{key}",
                              "empty (set it, its environment variable, or pass --" + key + ")")
    regions, country_region, default_region, iso = _load_regions(conf_dir / "regions.yaml")
    languages, topics, neg_window, neg_cues, tagger_model = _load_taxonomy(conf_dir / "taxonomy.yaml")
    for name, policy in regions.items():
        unknown = [s for s in policy.blocked_segments if s not in topics or topics[s].sensitive]
        if unknown:
            raise ConfigError(conf_dir / "regions.yaml", f"regions.{name}.policy.blocked_segments",
                              f"not targetable topic ids: {unknown}")
    weights, chat_weight, cap = _load_scoring(conf_dir / "scoring.yaml")
    return Config(
        conf_dir=conf_dir, profile=prof, spark_conf=spark_conf, regions=regions,
        country_region=country_region, default_region=default_region, iso_countries=iso,
        languages=languages, topics=topics, negation_window=neg_window, negation_cues=neg_cues,
        engagement_weights=weights, chat_turn_weight=chat_weight, daily_cap_per_topic=cap,
        timestamp_tolerance_hours=tolerance, duplicate_lookback_days=dup_lookback, tagger_model=tagger_model,
        retention=retention,
        quality=quality,
    )
