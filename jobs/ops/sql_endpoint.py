"""`audience serve-sql`: Spark's Thrift JDBC/ODBC server (HiveServer2's protocol, shipped in the
pyspark wheel) on 127.0.0.1, for BI tools and `beeline`: every table registered as `<layer>.<table>`,
and read-only for every session (the `audience.ReadOnlySql` extension, jobs/ops/java, built by
`make jars`, refuses any command that is not SHOW, DESCRIBE, EXPLAIN, USE or reading a SET, and
any query that reaches beyond the tables: files by path, TRANSFORM, reflect()).
"""

from __future__ import annotations

import signal
import threading

from jobs import REPO_ROOT
from jobs.config import Config
from jobs.errors import AudienceError

GUARD_JAR = REPO_ROOT / "jars" / "audience-readonly.jar"
GUARD = "audience.ReadOnlySql"


def serve(cfg: Config, host: str, port: int, max_hours: float, ready=print) -> None:
    """Start the server, call `ready(jdbc_url, tables)`, and serve until SIGINT/SIGTERM or `max_hours`."""
    from jobs.session import build_spark, delta_jars, profile_jars, register_tables

    if not GUARD_JAR.exists():
        raise AudienceError(f"{GUARD_JAR} missing (the endpoint's read-only guard): run `make jars`")
    jars = [*delta_jars(), *profile_jars(cfg), str(GUARD_JAR)]
    spark = build_spark(
        cfg,
        "audience-sql-endpoint",
        extra={
            "spark.jars": ",".join(jars),
            # The server's sessions load Delta's catalog through the JVM's own class path, which
            # spark.jars does not reach (ClassNotFoundException: DeltaCatalog on connecting).
            "spark.driver.extraClassPath": ":".join(jars),
            "spark.sql.extensions": f"io.delta.sql.DeltaSparkSessionExtension,{GUARD}",
            "spark.sql.hive.thriftServer.singleSession": "false",  # each connection its own session
            # No `SELECT * FROM json.`<path>``: the landing zone's raw identifiers stay out of reach
            # (the guard refuses SET, so a session cannot turn it back on).
            "spark.sql.runSQLOnFiles": "false",
        },
    )
    spark.conf.set("hive.server2.thrift.bind.host", host)  # read by the server from the session
    spark.conf.set("hive.server2.thrift.port", str(port))
    guard = spark.sparkContext._jvm.audience.ReadOnlySql
    guard.enable(False)  # the tables are registered by the server, before anyone connects
    try:
        tables = register_tables(spark, cfg)
    finally:
        guard.enable(True)
    spark.sparkContext._jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext()
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ready(f"jdbc:hive2://{host}:{port}/default", tables)
    stop.wait(max_hours * 3600)
    try:
        spark.stop()
    except ConnectionError:  # the JVM went first: the signal reached the whole process group
        pass
