package io.flightpickle;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** The frames and commands written by {@code fixtures/make_fixtures.py} with the real Python side. */
public final class Fixtures {

    public static final SigningKey JUNIT_KEY =
            new SigningKey("junit", "a key only the tests know".getBytes(StandardCharsets.UTF_8));

    private Fixtures() {}

    /**
     * The Python with flightpickle installed (the project's venv), which tests start the executor
     * service with; the build passes it from PYSPARK_PYTHON, which the Makefile sets.
     */
    public static String python() {
        String python = System.getProperty("flightpickle.test.python", "");
        if (python.isEmpty() || python.startsWith("${")) {
            throw new IllegalStateException("flightpickle.test.python is not set: run the Java tests through"
                    + " `make test-java`, or pass -Dflightpickle.test.python=<venv>/bin/python with PYSPARK_PYTHON");
        }
        return python;
    }

    public static byte[] read(String name) {
        String resource = "/io/flightpickle/fixtures/" + name;
        try (InputStream in = Fixtures.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is missing; run make_fixtures.py beside it");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
