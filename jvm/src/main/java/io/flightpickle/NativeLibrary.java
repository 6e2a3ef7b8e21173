package io.flightpickle;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;

/**
 * Loads {@code libflightpickle_jni} into this JVM, once per class loader.
 *
 * <p>A library found on {@code java.library.path} wins, so that people on a platform the jar does
 * not bundle can build their own and use it with the unchanged jar. Otherwise the copy bundled in
 * the jar for this platform is used.
 */
public final class NativeLibrary {

    static final String LIBRARY_NAME = "flightpickle_jni";
    static final List<String> SUPPORTED_PLATFORMS = List.of("linux-x86_64");

    private static final String RESOURCE_DIRECTORY = "io/flightpickle/native/";
    private static final String HOW_TO_USE_YOUR_OWN_BUILD =
            "To use a library of your own, build it from the flightpickle sources"
                    + " (cargo build --release -p flightpickle-jni) and put the directory holding "
                    + "lib" + LIBRARY_NAME + ".so on java.library.path: -Djava.library.path=<dir>,"
                    + " or, in Spark, set spark.driver.extraLibraryPath and"
                    + " spark.executor.extraLibraryPath to it.";

    /** Where the library came from; null until it is loaded. Guarded by the class lock. */
    private static String loadedFrom;

    private NativeLibrary() {}

    /**
     * Makes the library's native methods callable, unless this class loader already did.
     *
     * @return where the library was loaded from, for diagnostics
     * @throws UnsatisfiedLinkError if no usable library exists for this platform; the message
     *     says what to do about it
     */
    public static synchronized String load() {
        if (loadedFrom == null) {
            loadedFrom = loadFromLibraryPathOrJar();
        }
        return loadedFrom;
    }

    private static String loadFromLibraryPathOrJar() {
        try {
            System.loadLibrary(LIBRARY_NAME);
            return "java.library.path";
        } catch (UnsatisfiedLinkError notOnLibraryPath) {
            try {
                return loadFromJar();
            } catch (UnsatisfiedLinkError notFromJar) {
                notFromJar.addSuppressed(notOnLibraryPath);
                throw notFromJar;
            }
        }
    }

    private static String loadFromJar() {
        String resource = resourcePath(System.getProperty("os.name"), System.getProperty("os.arch"));
        Path copy = copyToTemporaryFile(resource);
        try {
            System.load(copy.toString());
        } catch (UnsatisfiedLinkError e) {
            throw linkError("the JVM could not load " + resource + " after copying it to " + copy
                    + ": " + e.getMessage() + ". If the temporary directory does not allow"
                    + " executing files, point -Djava.io.tmpdir elsewhere. " + HOW_TO_USE_YOUR_OWN_BUILD, e);
        } finally {
            // Once loaded the mapping outlives the file, and deleting it now rather than at exit
            // matters because Spark executors are usually killed, not shut down: deleteOnExit
            // would leave one copy per executor behind in the temporary directory.
            deleteOrDeleteOnExit(copy);
        }
        return "jar resource " + resource;
    }

    /**
     * The jar resource holding the library for a platform, as named by the {@code os.name} and
     * {@code os.arch} system properties.
     *
     * @throws UnsatisfiedLinkError if the jar bundles no library for that platform
     */
    static String resourcePath(String osName, String osArch) {
        String platform = platform(osName, osArch);
        if (!SUPPORTED_PLATFORMS.contains(platform)) {
            throw linkError("flightpickle has no native library for " + platform + " (os.name="
                    + osName + ", os.arch=" + osArch + "); this jar bundles one for "
                    + String.join(", ", SUPPORTED_PLATFORMS) + " only. " + HOW_TO_USE_YOUR_OWN_BUILD, null);
        }
        return RESOURCE_DIRECTORY + platform + "/lib" + LIBRARY_NAME + ".so";
    }

    /** The platform name used in resource paths, e.g. {@code linux-x86_64}. */
    static String platform(String osName, String osArch) {
        return operatingSystem(osName) + "-" + architecture(osArch);
    }

    private static String operatingSystem(String osName) {
        String os = osName.toLowerCase(Locale.ROOT);
        if (os.startsWith("linux")) {
            return "linux";
        }
        if (os.startsWith("mac") || os.startsWith("darwin")) {
            return "darwin";
        }
        if (os.startsWith("windows")) {
            return "windows";
        }
        return os.replaceAll("\\s+", "");
    }

    // The JDK reports "amd64" on Linux x86-64, where Rust and most tooling say "x86_64".
    private static String architecture(String osArch) {
        String arch = osArch.toLowerCase(Locale.ROOT);
        return switch (arch) {
            case "amd64", "x86_64", "x64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
    }

    /**
     * Copies a bundled library to a file of its own, because the JVM loads native code only from
     * files, and a fresh name per load lets several class loaders in one JVM each load a copy.
     */
    static Path copyToTemporaryFile(String resource) {
        try (InputStream library = NativeLibrary.class.getResourceAsStream("/" + resource)) {
            if (library == null) {
                throw linkError("this flightpickle jar lacks its native library " + resource
                        + ": it was built without it. Rebuild the jar with `make jar`. "
                        + HOW_TO_USE_YOUR_OWN_BUILD, null);
            }
            return writeTemporaryFile(library);
        } catch (IOException e) {
            throw linkError("could not copy " + resource + " to a temporary file in "
                    + System.getProperty("java.io.tmpdir") + ": " + e + ". " + HOW_TO_USE_YOUR_OWN_BUILD, e);
        }
    }

    private static Path writeTemporaryFile(InputStream library) throws IOException {
        Path copy = Files.createTempFile("lib" + LIBRARY_NAME + "-", ".so");
        try {
            Files.copy(library, copy, StandardCopyOption.REPLACE_EXISTING);
            return copy;
        } catch (IOException e) {
            deleteOrDeleteOnExit(copy);
            throw e;
        }
    }

    private static void deleteOrDeleteOnExit(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            file.toFile().deleteOnExit();
        }
    }

    private static UnsatisfiedLinkError linkError(String message, Throwable cause) {
        UnsatisfiedLinkError error = new UnsatisfiedLinkError(message);
        if (cause != null) {
            error.initCause(cause);
        }
        return error;
    }
}
