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
