package audience;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.execution.command.SetCommand;
import scala.Option;
import scala.Tuple2;
import scala.Function1;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The SQL endpoint's guard (`audience serve-sql`, spark.sql.extensions=audience.ReadOnlySql): after
 * analysis, a statement may read (a query) or run one of the commands that only list or describe;
 * any other command (INSERT, DELETE, UPDATE, MERGE, CREATE, DROP, ALTER, OPTIMIZE, VACUUM, RESTORE,
 * CACHE, ...) is refused. An allow-list: a command Spark or Delta adds later is refused until named
 * here. A query may not reach beyond the tables either: no TRANSFORM (it runs a shell command), no
 * reflect()/java_method() (static Java calls, this guard's own switch among them), and SET only reads
 * settings (with spark.sql.runSQLOnFiles off, `SELECT * FROM json.`/landing/...`` stays refused).
 * The server registers its tables with the guard off, before it listens.
 */
public final class ReadOnlySql extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {
    private static final AtomicBoolean ON = new AtomicBoolean(true);
    private static final String JAVA8_API = "spark.sql.datetime.java8API.enabled";

    // Analyzed plans of SHOW, DESCRIBE, EXPLAIN, USE and SET (v2 names and their v1 resolutions).
    static final Set<String> LISTS_OR_DESCRIBES = Set.of(
            "ShowTables", "ShowTablesCommand", "ShowTablesExtended", "ShowTableExtended",
            "ShowNamespaces", "ShowNamespacesCommand", "ShowCatalogsCommand", "ShowViews", "ShowViewsCommand",
            "ShowColumns", "ShowColumnsCommand", "ShowTableProperties", "ShowTablePropertiesCommand",
            "ShowCreateTable", "ShowCreateTableCommand", "ShowPartitions", "ShowPartitionsCommand",
            "ShowFunctions", "ShowFunctionsCommand", "DescribeRelation", "DescribeTableCommand",
            "DescribeColumn", "DescribeColumnCommand", "DescribeNamespace", "DescribeDatabaseCommand",
            "DescribeFunction", "DescribeFunctionCommand", "DescribeDeltaHistory",
            "DescribeDeltaHistoryCommand", "DescribeDeltaDetailCommand", "ExplainCommand",
            "SetCatalogAndNamespace", "SetNamespaceCommand", "SetCommand", "ResetCommand");

    // Plan nodes and expressions that leave the tables: a shell command, a static Java method.
    static final Set<String> OUTSIDE_THE_TABLES = Set.of(
            "ScriptTransformation", "CallMethodViaReflection", "TryReflect");

    // The one setting a session may change: how its timestamps print.
    static final Set<String> SETTABLE = Set.of("spark.sql.session.timeZone");

    public static void enable(boolean on) {
        ON.set(on);
    }

    /** Every node of the analyzed plan, its subqueries and expressions: a write can sit under a WITH. */
    static void check(LogicalPlan plan) {
        if (!ON.get()) {
            return;
        }
        Deque<LogicalPlan> nodes = new ArrayDeque<>(List.of(plan));
        while (!nodes.isEmpty()) {
            LogicalPlan node = nodes.pop();
            String name = node.getClass().getSimpleName();
            if (node instanceof Command && !LISTS_OR_DESCRIBES.contains(name)) {
                refuse(name + " is refused (queries, SHOW, DESCRIBE, EXPLAIN only)");
            }
            if (OUTSIDE_THE_TABLES.contains(name)) {
                refuse(name + " is refused (it reaches beyond the tables)");
            }
            if (node instanceof SetCommand) {
                Option<Tuple2<String, Option<String>>> kv = ((SetCommand) node).kv();
                if (kv.isDefined() && kv.get()._2().isDefined() && !SETTABLE.contains(kv.get()._1())) {
                    refuse("SET " + kv.get()._1() + " is refused (settings are read-only but " + SETTABLE + ")");
                }
            }
            Deque<Expression> expressions = new ArrayDeque<>();
            pushAll(node.expressions(), expressions);
            while (!expressions.isEmpty()) {
                Expression e = expressions.pop();
                if (OUTSIDE_THE_TABLES.contains(e.getClass().getSimpleName())) {
                    refuse(e.prettyName() + "() is refused (it reaches beyond the tables)");
                }
                pushAll(e.children(), expressions);
            }
            pushAll(node.children(), nodes);
            pushAll(node.subqueries(), nodes);
        }
    }

    private static <T> void pushAll(scala.collection.Seq<T> items, Deque<T> into) {
        scala.collection.Iterator<T> it = items.iterator();
        while (it.hasNext()) {
            into.push(it.next());
        }
    }

    private static void refuse(String why) {
        throw new UnsupportedOperationException("read-only SQL endpoint: " + why);
    }

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        extensions.injectCheckRule(new AbstractFunction1<SparkSession, Function1<LogicalPlan, BoxedUnit>>() {
            @Override
            public Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
                return new AbstractFunction1<LogicalPlan, BoxedUnit>() {
                    @Override
                    public BoxedUnit apply(LogicalPlan plan) {
                        check(plan);
                        // The Thrift server turns java.time values on in every session it opens;
                        // Delta's partition pruning then fails on a date from a scalar subquery
                        // (`WHERE snapshot_date = (SELECT max(snapshot_date) ...)`: LocalDate cannot
                        // be cast to java.sql.Date). Before this statement is optimized, back to
                        // java.sql values, which the server's result rows handle as well.
                        if (ON.get() && "true".equals(session.conf().get(JAVA8_API, "false"))) {
                            session.conf().set(JAVA8_API, "false");
                        }
                        return BoxedUnit.UNIT;
                    }
                };
            }
        });
        return BoxedUnit.UNIT;
    }
}
