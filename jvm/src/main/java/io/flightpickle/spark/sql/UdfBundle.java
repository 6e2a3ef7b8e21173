package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.NamedArgumentExpression;
import org.apache.spark.sql.catalyst.expressions.PythonUDF;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The UDFs of one of Spark's {@code ArrowEvalPythonExec} as one stream's function: several UDFs
 * ({@code select(f(a), g(b))}), chains ({@code f(g(x))}, where PySpark passes the inner result to
 * the outer function as it is) and keyword arguments. The stream's input columns are the UDFs'
 * arguments, in order, and its output one column per UDF. The service reads the bundle (see
 * {@code flightpickle/executor/udf_bundle.py}; the layout is in {@code PROTOCOL.md}, "UDF bundles").
 *
 * <p>Each command of a bundle is its sealed frame, as a single UDF's: a command that travels as a
 * broadcast (over {@code spark.broadcast.UDFCompressionThreshold}) would have to be read on every
 * task to be bundled, so such an operator stays Spark's.
 */
final class UdfBundle {

    static final byte[] MAGIC = "FPBUNDLE".getBytes(StandardCharsets.US_ASCII);
    static final String DIGEST_PREFIX = "bundle-";

    private UdfBundle() {}

    /** Whether {@code udf} needs a bundle: a chain, or keyword arguments. */
    static boolean needsBundle(PythonUDF udf) {
        return CollectionConverters.asJava(udf.children()).stream()
                .anyMatch(child -> child instanceof PythonUDF || child instanceof NamedArgumentExpression);
    }

    /** The functions of {@code udf}'s chain, innermost first (just {@code udf} when it is not chained). */
    static List<PythonUDF> chain(PythonUDF udf) {
        List<PythonUDF> chain = new ArrayList<>();
        PythonUDF node = udf;
        while (true) {
            chain.add(0, node);
            List<Expression> children = CollectionConverters.asJava(node.children());
            if (children.size() == 1 && children.get(0) instanceof PythonUDF inner) {
                node = inner;
            } else {
                return chain;
            }
        }
    }

    /** The argument expressions of {@code udf}'s innermost function, keyword ones unwrapped: its input columns. */
    static List<Expression> arguments(PythonUDF udf) {
        List<Expression> arguments = new ArrayList<>();
        for (Expression argument : CollectionConverters.asJava(chain(udf).get(0).children())) {
            arguments.add(argument instanceof NamedArgumentExpression named ? named.value() : argument);
        }
        return arguments;
    }

    /** The input columns of all {@code udfs}, in the order the bundle numbers them. */
    static List<Expression> arguments(List<PythonUDF> udfs) {
        List<Expression> all = new ArrayList<>();
        udfs.forEach(udf -> all.addAll(arguments(udf)));
        return all;
    }

    /** Why {@code udf}'s arguments cannot be laid out in a bundle, if they cannot. */
    static Optional<String> unsupportedArguments(PythonUDF udf) {
        for (Expression argument : CollectionConverters.asJava(chain(udf).get(0).children())) {
            if (argument instanceof PythonUDF) {
                return Optional.of("a Python UDF among other arguments of a Python UDF is not supported yet");
            }
        }
        return Optional.empty();
    }

    /** The bundle of {@code udfs} as a function of {@code kind}, or why there is none. */
    static StreamedFunction.Result of(List<PythonUDF> udfs, ExecutorStream.Kind kind) {
        List<byte[]> envelopes = new ArrayList<>();
        StringBuilder layout = new StringBuilder("{\"udfs\":[");
        int column = 0;
        for (PythonUDF udf : udfs) {
            layout.append(envelopes.isEmpty() ? "" : ",").append("{\"functions\":[");
            List<PythonUDF> chain = chain(udf);
            for (int i = 0; i < chain.size(); i++) {
                StreamedFunction.Result member = StreamedFunction.of(SparkShim.commandBytes(chain.get(i)),
                        chain.get(i).func().broadcastVars(), kind);
                if (member.function().isEmpty()) {
                    return member;
                }
                if (member.function().get().envelope() == null) {
                    return StreamedFunction.Result.fallback("the command of UDF " + chain.get(i).name()
                            + " travels as a broadcast, which is not supported with several, chained or"
                            + " keyword-argument UDFs yet");
                }
                layout.append(i == 0 ? "" : ",").append(envelopes.size());
                envelopes.add(member.function().get().envelope());
            }
            layout.append("],");
            column = appendArguments(layout, chain.get(0), column);
            layout.append('}');
        }
        byte[] body = body(layout.append("]}").toString(), envelopes);
        return StreamedFunction.Result.of(new StreamedFunction(kind, body, null, DIGEST_PREFIX + sha256(body)));
    }

    /** {@code "args":[...],"kwargs":{...}} of the innermost function, numbered from {@code column}. */
    private static int appendArguments(StringBuilder layout, PythonUDF innermost, int column) {
        StringBuilder args = new StringBuilder();
        StringBuilder kwargs = new StringBuilder();
        for (Expression argument : CollectionConverters.asJava(innermost.children())) {
            if (argument instanceof NamedArgumentExpression named) {
                kwargs.append(kwargs.isEmpty() ? "" : ",").append(jsonString(named.key())).append(':').append(column++);
            } else {
                args.append(args.isEmpty() ? "" : ",").append(column++);
            }
        }
        layout.append("\"args\":[").append(args).append("],\"kwargs\":{").append(kwargs).append('}');
        return column;
    }

    private static byte[] body(String layout, List<byte[]> envelopes) {
        byte[] layoutBytes = layout.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(MAGIC);
        out.writeBytes(littleEndian(4).putInt(layoutBytes.length).array());
        out.writeBytes(layoutBytes);
        out.writeBytes(littleEndian(4).putInt(envelopes.size()).array());
        for (byte[] envelope : envelopes) {
            out.writeBytes(littleEndian(8).putLong(envelope.length).array());
            out.writeBytes(envelope);
        }
        return out.toByteArray();
    }

    private static ByteBuffer littleEndian(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A JSON string of a keyword (a Python identifier; quotes and backslashes escaped all the same). */
    static String jsonString(String text) {
        StringBuilder json = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') {
                json.append('\\').append(c);
            } else if (c < 0x20) {
                json.append(String.format("\\u%04x", (int) c));
            } else {
                json.append(c);
            }
        }
        return json.append('"').toString();
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException impossible) {
            throw new IllegalStateException("every Java platform has SHA-256", impossible);
        }
    }
}
