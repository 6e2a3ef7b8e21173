package io.flightpickle;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** Facts about this build of the jar, written into a resource by Maven. */
public final class BuildInfo {

    private static final String RESOURCE = "/io/flightpickle/flightpickle.properties";
    private static final String VERSION = readProperty("version");

    private BuildInfo() {}

    /** The version of the jar, which is also the version of the Cargo workspace it was built from. */
    public static String version() {
        return VERSION;
    }

    private static String readProperty(String name) {
        Properties properties = new Properties();
        try (InputStream in = BuildInfo.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the flightpickle jar lacks " + RESOURCE + "; rebuild it with `make jar`");
            }
            properties.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException("could not read " + RESOURCE + " from the flightpickle jar", e);
        }
        String value = properties.getProperty(name);
        if (value == null || value.startsWith("${")) {
            throw new IllegalStateException(RESOURCE + " has no " + name + " filled in by the build; rebuild the jar with `make jar`");
        }
        return value;
    }
}
