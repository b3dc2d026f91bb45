"""`audience sql`: read-only SQL over the registered tables."""

from __future__ import annotations

import csv
import json
import re
import sys

from jobs.cli.common import config_of, render_table, session
from jobs.errors import AudienceError

READ_COMMANDS = {
    "ShowTables",
    "ShowTablesExtended",
    "ShowColumns",
    "ShowNamespaces",
    "ShowViews",
    "ShowFunctions",
    "ShowPartitions",
    "ShowTableProperties",
    "ShowCreateTable",
    "DescribeRelation",
    "DescribeColumn",
    "DescribeNamespace",
    "DescribeFunction",
    "ExplainCommand",
    "DescribeDeltaHistory",
    "DescribeDeltaDetailCommand",
    "SetCatalogAndNamespace",
}


WRITE_NODE = re.compile(
    r"Insert|Restore|Merge|Update|Delete|Write|Overwrite|Replace|Create|Drop|Alter|Truncate"
    r"|Vacuum|Optimize|Reorg|Convert|Clone|Cache|Refresh|Load|Set|Reset|Add|Use"
)


# What reaches beyond the tables, as the SQL endpoint's guard refuses it (jobs/ops/java): a shell
# command, static Java methods, and files by path (`json.`/landing/...``: the landing zone's raw rows).
OUTSIDE_THE_TABLES = {"ScriptTransformation"}
JAVA_CALLS = {"reflect", "java_method", "try_reflect"}
FILE_FORMATS = {"json", "parquet", "csv", "text", "orc", "avro", "xml", "binaryfile", "delta"}


def _outside_the_tables(node) -> str | None:
    """What in one parsed plan node reaches beyond the tables, if anything."""
    name = node.getClass().getSimpleName()
    if name in OUTSIDE_THE_TABLES:
        return name
    if name == "UnresolvedRelation":
        parts = node.multipartIdentifier()
        if parts.size() > 1 and parts.apply(0).lower() in FILE_FORMATS:
            return f"reading files by path ({parts.apply(0)}.`...`)"
    seq = node.expressions()
    expressions = [seq.apply(i) for i in range(seq.size())]
    while expressions:
        e = expressions.pop()
        if e.getClass().getSimpleName() == "UnresolvedFunction" and e.nameParts().last().lower() in JAVA_CALLS:
            return f"{e.nameParts().last()}()"
        children = e.children()
        expressions += [children.apply(i) for i in range(children.size())]
    return None


def read_only_plan(spark, query: str) -> None:
    """Refuse any statement that could change a table or reach beyond them: `audience sql` is read-only."""
    jvm = spark.sparkContext._jvm
    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(query)
    except Exception as exc:  # ParseException: its first line is what a user needs
        raise AudienceError(f"query failed: {str(exc).splitlines()[0]}") from None
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command")
    nodes = [plan]
    while nodes:  # the whole parsed tree, its WITH clauses and subqueries: a write can hide under a WITH
        node = nodes.pop()
        name = node.getClass().getSimpleName()
        if name not in READ_COMMANDS and (command.isInstance(node) or WRITE_NODE.search(name)):
            raise AudienceError(f"audience sql is read-only: {name} refused (use SELECT, SHOW, DESCRIBE, EXPLAIN)")
        outside = _outside_the_tables(node)
        if outside:
            raise AudienceError(f"audience sql is read-only over the tables: {outside} refused")
        for children in (node.children(), node.innerChildren(), node.subqueries()):
            nodes += [children.apply(i) for i in range(children.size())]


def cmd_sql(args, progress):
    from jobs.session import register_tables

    cfg = config_of(args)
    spark = session(cfg, "audience-sql")
    read_only_plan(spark, args.query)
    register_tables(spark, cfg)
    try:
        frame = spark.sql(args.query)
    except Exception as exc:  # AnalysisException, ParseException: the message is what a user needs
        raise AudienceError(f"query failed: {str(exc).splitlines()[0]}") from None
    if not frame.columns:
        print("ok")
    elif args.format == "table":  # a screenful; says when there is more
        limit = 50 if args.limit is None else args.limit
        rows = [r.asDict() for r in frame.limit(limit + 1).collect()]
        print(render_table(rows[:limit], frame.columns))
        if len(rows) > limit:
            print(f"(first {limit} rows: --limit N for more, --format csv or json for all)", file=sys.stderr)
    else:  # an export: every row (or --limit), streamed a partition at a time rather than collected
        rows = (r.asDict() for r in (frame if args.limit is None else frame.limit(args.limit)).toLocalIterator())
        if args.format == "csv":
            out = csv.DictWriter(sys.stdout, frame.columns, lineterminator="\n")
            out.writeheader()
            out.writerows(rows)
        else:  # one object per line; dates and timestamps as ISO text
            for row in rows:
                print(json.dumps(row, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


def cmd_serve_sql(args, progress):
    from jobs.ops.sql_endpoint import serve

    def ready(url, tables):
        print(f"serving {len(tables)} tables read-only at {url} (beeline -u {url}); Ctrl-C stops", flush=True)

    serve(config_of(args), args.host, args.port, args.max_hours, ready)
