import shutil

import pytest

from jobs.config import DEFAULT_CONF_DIR, load_config
from jobs.errors import ConfigError


@pytest.fixture
def conf_copy(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, target)
    return target


def test_shipped_conf_loads_with_spec_defaults():
    cfg = load_config()
    eu, us = cfg.regions["EU"], cfg.regions["US"]
    assert str(eu.chat_signals_from) == "2025-12-16"
    assert us.chat_signals_from is None
    assert (us.min_age, us.min_audience_size, us.lookback_days, us.half_life_days, us.min_score, us.top_k) == (
        18,
        100,
        30,
        7.0,
        3.0,
        5,
    )
    assert us.honor_chat_opt_out and us.sensitive_suppression == "conversation"


def test_every_eu_member_state_maps_to_eu_and_unlisted_countries_to_row():
    cfg = load_config()
    eu27 = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
    assert {c: cfg.region_of(c) for c in eu27} == {c: "EU" for c in eu27}
    assert cfg.region_of("NO") == "ROW" and cfg.region_of("GB") == "UK"


def test_taxonomy_has_all_spec_topics_with_iab_ids_and_eight_languages():
    cfg = load_config()
    sensitive = {t.topic_id for t in cfg.topics.values() if t.sensitive}
    assert sensitive == {
        "health",
        "religion",
        "philosophical_beliefs",
        "politics",
        "sexual_orientation",
        "ethnic_origin",
        "trade_union",
        "genetic_biometric",
    }
    assert len(cfg.targetable_topics) == 28
    assert cfg.topics["travel"].iab_audience_id == "719" and cfg.topics["weddings"].iab_audience_id == "1505"
    assert all(set(t.vocab) == {"en", "fr", "de", "es", "it", "pt", "nl", "pl"} for t in cfg.topics.values())


def _planted_error(conf_dir, file, old, new) -> ConfigError:
    """The error loading conf_dir gives once `old` is replaced by `new` in `file`."""
    path = conf_dir / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(conf_dir)
    return err.value


@pytest.mark.parametrize(
    "file,old,new,key",
    [
        ("regions.yaml", "  min_age: 18", "  min_age: eighteen", "policy_defaults.min_age"),
        (
            "regions.yaml",
            "sensitive_suppression: conversation",
            "sensitive_suppression: sometimes",
            "policy_defaults.sensitive_suppression",
        ),
        ("regions.yaml", "countries: [CA]", "countries: [CA, QQ]", "regions.CA.countries"),
        ("scoring.yaml", "  follow: 3.0", "  follow: -3", "engagement_weights.follow"),
        ("pipeline.yaml", "profile: local", "profile: nowhere", "profile"),
        ("taxonomy.yaml", "      pl: [rower*, kolarstw*, kolarz*]", "", "topics.cycling.vocab.pl"),
    ],
)
def test_bad_conf_value_names_file_and_key(conf_copy, file, old, new, key):
    err = _planted_error(conf_copy, file, old, new)
    assert (err.file, err.key) == (conf_copy / file, key)


@pytest.mark.parametrize(
    "file,old,new,key",
    [
        # a typo must not fall back to the default of the policy that guards small audiences and minors
        (
            "regions.yaml",
            "      chat_signals_from: 2025-12-16",
            "      chat_signals_from: 2025-12-16\n      min_audiance_size: 5",
            "regions.EU.policy.min_audiance_size",
        ),
        (
            "regions.yaml",
            "      chat_signals_from: 2025-12-16",
            "      chat_signals_from_date: 2025-12-16",
            "regions.EU.policy.chat_signals_from_date",
        ),
        ("pipeline.yaml", "  trailing_days: 7", "  trailing_day: 7", "quality.trailing_day"),
        ("taxonomy.yaml", "    name: Travel", "    name: Travel\n    sensitve: true", "topics.travel.sensitve"),
    ],
)
def test_unknown_conf_key_is_an_error_naming_file_and_key(conf_copy, file, old, new, key):
    err = _planted_error(conf_copy, file, old, new)
    assert (err.file, err.key) == (conf_copy / file, key) and err.problem.startswith("unknown key")


def test_misspelt_key_error_suggests_the_known_one(conf_copy):
    path = conf_copy / "regions.yaml"
    path.write_text(path.read_text().replace("  min_audience_size: 100", "  min_audiance_size: 100", 1))
    with pytest.raises(ConfigError, match="did you mean 'min_audience_size'"):
        load_config(conf_copy)


def test_committed_json_schemas_match_the_models(tmp_path):
    from jobs.config import write_schemas

    for generated in write_schemas(tmp_path):
        committed = DEFAULT_CONF_DIR / "schema" / generated.name
        assert committed.read_text() == generated.read_text(), f"run make conf-schema: {committed} is stale"


def test_invalid_yaml_reports_the_line(conf_copy):
    (conf_copy / "scoring.yaml").write_text("engagement_weights: [unclosed\n")
    with pytest.raises(ConfigError, match=r"scoring.yaml: line \d+: not valid YAML"):
        load_config(conf_copy)


def test_object_store_profile_keeps_uris_and_adds_its_settings(monkeypatch):
    """The `s3` example profile: roots stay `s3a://` URIs down to table and landing paths (a
    pathlib join would fold `//`), and its own Spark settings come over the file's."""
    import datetime as dt

    from jobs import tables as t
    from jobs.bronze.stage import day_folder

    monkeypatch.setenv("AUDIENCE_WAREHOUSE", "s3a://lake/prod/")
    monkeypatch.setenv("AUDIENCE_SHUFFLE_PARTITIONS", "16")
    cfg = load_config(profile="s3")
    assert t.AUDIENCE_SEGMENTS.path(cfg.warehouse) == "s3a://lake/prod/gold/audience_segments"
    assert day_folder(cfg, "chat_messages", dt.date(2026, 1, 2)) == (
        "s3a://audience-landing/landing/chat_messages/date=2026-01-02"
    )
    assert cfg.profile.shuffle_partitions == 16
    assert cfg.spark_conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        "EnvironmentVariableCredentialsProvider"
    )
    assert cfg.spark_conf["spark.sql.session.timeZone"] == "UTC"  # the file's settings still apply
    assert not cfg.data_docs.as_posix().startswith("s3a:")  # GX's project stays local


def test_a_profile_jar_that_is_missing_names_the_make_target(conf_copy):
    from jobs.errors import AudienceError
    from jobs.session import profile_jars

    text = (conf_copy / "pipeline.yaml").read_text()
    (conf_copy / "pipeline.yaml").write_text(text.replace("jars: [jars/s3/*.jar]", "jars: [jars/none-such/*.jar]"))
    with pytest.raises(AudienceError, match=r"no jar matches jars/none-such/\*\.jar .*make s3-jars"):
        profile_jars(load_config(conf_copy, profile="s3"))
