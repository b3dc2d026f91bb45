# Two entry points for a fresh machine (Python 3.11, Java 17, Maven): `make demo`, `make test`.
# Both build the virtualenv and fetch Delta's jars when missing; a second call is quick.
PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(VENV)/bin
# delta-spark 4.4.1 is on PyPI but not on Maven Central; 4.4.0 is the newest pair served by both.
DELTA       := 4.4.0
SPARK_MINOR := 4.1
JARS_DIR    := jars
# The SQL endpoint's read-only guard (`audience serve-sql`), compiled against pyspark's own jars.
GUARD_JAR   := $(JARS_DIR)/audience-readonly.jar
JARS        := $(JARS_DIR)/delta-spark_$(SPARK_MINOR)_2.13-$(DELTA).jar $(JARS_DIR)/delta-storage-$(DELTA).jar $(GUARD_JAR)

.PHONY: install jars browser s3-jars demo quick-demo test lint constraints airflow-backfill bench bench-compare cluster-check s3-check train-tagger tagger-eval conf-schema clean

install: $(VENV)/.installed
jars: $(JARS)

# constraints.txt pins the whole resolved environment (Airflow installs reproducibly only against
# constraints); after changing a requirement, re-resolve and refresh it with `make constraints`.
# Installed with uv, which resolves the same pinned set as pip (156 packages, compared with
# `pip freeze`) in 61 s against pip's 97 s on 2 cores; pip stays in the venv for `make constraints`.
$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $@

$(JARS_DIR)/delta-spark_$(SPARK_MINOR)_2.13-$(DELTA).jar:
	mvn -q dependency:copy -Dartifact=io.delta:delta-spark_$(SPARK_MINOR)_2.13:$(DELTA) -DoutputDirectory=$(JARS_DIR)

$(JARS_DIR)/delta-storage-$(DELTA).jar:
	mvn -q dependency:copy -Dartifact=io.delta:delta-storage:$(DELTA) -DoutputDirectory=$(JARS_DIR)

$(GUARD_JAR): jobs/ops/java/audience/ReadOnlySql.java $(VENV)/.installed
	rm -rf $(JARS_DIR)/classes && mkdir -p $(JARS_DIR)/classes
	javac -nowarn --release 17 -d $(JARS_DIR)/classes $< \
		-cp "$$($(BIN)/python -c 'import pyspark, pathlib; print(pathlib.Path(pyspark.__file__).parent / "jars")')/*"
	jar cf $@ -C $(JARS_DIR)/classes audience

# The object-store connector of the `s3` profile (conf/pipeline.yaml): hadoop-aws matching pyspark's
# Hadoop (3.4.2) and the AWS SDK v2 bundle hadoop-aws 3.4.2 was built with (about 640 MB).
S3_JARS := jars/s3/hadoop-aws-3.4.2.jar jars/s3/bundle-2.29.52.jar
s3-jars: $(S3_JARS)

jars/s3/hadoop-aws-3.4.2.jar:
	mvn -q dependency:copy -Dartifact=org.apache.hadoop:hadoop-aws:3.4.2 -DoutputDirectory=jars/s3

jars/s3/bundle-2.29.52.jar:
	mvn -q dependency:copy -Dartifact=software.amazon.awssdk:bundle:2.29.52 -DoutputDirectory=jars/s3

demo: install jars
	mkdir -p airflow_home
	scripts/demo.sh

quick-demo: install jars
	$(BIN)/audience demo

airflow-backfill: install jars
	scripts/airflow_backfill.sh

# Benchmarks (not part of `make test`; benchmarks/stages.py --help): `make bench` runs the product as
# shipped at scale factor SF (SF1: 1M chat messages and 5M events a night) with 30 days of history,
# then 60, beside the I/O floor; `make bench-compare` runs the night (vocabulary tagger, two real
# history nights: DuckDB reads the landing, not our tables) beside the floor, the naive pipeline
# (benchmarks/naive.py) and DuckDB (benchmarks/duckdb_core.py), members checked.
SF ?= 1
bench: install jars
	$(BIN)/python benchmarks/stages.py --sf $(SF) --copy-history 30 --double-history --io-floor \
		--workdir /tmp/audience-bench-sf$(SF) --json benchmarks/bench-sf$(SF).json

bench-compare: install jars
	$(BIN)/python benchmarks/stages.py --sf $(SF) --history-days 2 --io-floor --vocabulary-only --naive --duckdb \
		--workdir /tmp/audience-compare-sf$(SF) --json benchmarks/compare-sf$(SF).json

# Cluster mode: a standalone master and worker on 127.0.0.1, one date through the DAG on them, the same
# date in local mode, gold compared row for row (about 10 minutes on 2 cores; not part of `make test`).
cluster-check: install jars
	scripts/cluster_check.sh

# Object storage: the `s3` profile against an S3 API server on 127.0.0.1 (moto's, run by uv in an
# environment of its own: its botocore pins an older python-dateutil than Airflow's), one generated
# date run with landing and warehouse in buckets (about 10 minutes on 2 cores; not in `make test`).
s3-check: install jars s3-jars
	scripts/s3_check.sh

# Debian's Chromium, for the test that opens `audience report --html`'s page in a real browser
# (root, or sudo when there is one).
browser:
	command -v chromium >/dev/null || { $$(command -v sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -qq --no-install-recommends chromium; }

test: install jars browser
	$(BIN)/pytest

# ruff's lint rules and formatter (pyproject.toml); .ci/run runs it before the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

constraints: install
	$(BIN)/pip freeze --exclude-editable > constraints.txt

# The learned tagger: re-train after adding labelled messages to models/tagger_corpus/ (then point
# `model:` in conf/taxonomy.yaml at the folder it prints); score the configured one on the test split.
train-tagger: install jars
	$(BIN)/audience train-tagger

tagger-eval: install jars
	$(BIN)/audience tag --evaluate models/tagger_corpus --split test

# JSON Schemas of conf/*.yaml for editors, from the pydantic models (a test fails when they are stale).
conf-schema: install
	$(BIN)/python -m jobs.config --schemas conf/schema

clean:
	rm -rf warehouse landing data_docs spark-warehouse airflow_home logs
