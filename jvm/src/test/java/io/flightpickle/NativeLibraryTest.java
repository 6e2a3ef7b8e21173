package io.flightpickle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class NativeLibraryTest {

    private static final String LINUX_X86_64_RESOURCE =
            "io/flightpickle/native/linux-x86_64/libflightpickle_jni.so";

    @Test
    void loadsTheCopyBundledAsAResourceWhenNotOnTheLibraryPath() {
        // Surefire points java.library.path at an empty directory.
        assertEquals("jar resource " + LINUX_X86_64_RESOURCE, NativeLibrary.load());
        assertEquals(BuildInfo.version(), Native.coreVersion());
    }

    @Test
    void loadingAgainFromManyThreadsIsHarmless() throws Exception {
        String first = NativeLibrary.load();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Callable<String>> loads = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                loads.add(() -> NativeLibrary.load() + " / " + Native.coreVersion());
            }
            for (Future<String> result : pool.invokeAll(loads)) {
                assertEquals(first + " / " + BuildInfo.version(), result.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void mapsTheJdkNamesOfLinuxOnX86ToTheBundledResource() {
        assertEquals("linux-x86_64", NativeLibrary.platform("Linux", "amd64"));
        assertEquals("linux-x86_64", NativeLibrary.platform("Linux", "x86_64"));
        assertEquals(LINUX_X86_64_RESOURCE, NativeLibrary.resourcePath("Linux", "amd64"));
    }

    @Test
    void namesOtherPlatformsConsistently() {
        assertEquals("linux-aarch64", NativeLibrary.platform("Linux", "aarch64"));
        assertEquals("darwin-aarch64", NativeLibrary.platform("Mac OS X", "aarch64"));
        assertEquals("windows-x86_64", NativeLibrary.platform("Windows 11", "amd64"));
        assertEquals("freebsd-x86_64", NativeLibrary.platform("FreeBSD", "amd64"));
    }

    @Test
    void refusesAnUnsupportedPlatformWithAMessageThatSaysWhatToDo() {
        UnsatisfiedLinkError error = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLibrary.resourcePath("Mac OS X", "aarch64"));
        String message = error.getMessage();
        assertTrue(message.contains("darwin-aarch64"), message);
        assertTrue(message.contains("os.name=Mac OS X, os.arch=aarch64"), message);
        assertTrue(message.contains("bundles one for linux-x86_64 only"), message);
        assertTrue(message.contains("cargo build --release -p flightpickle-jni"), message);
        assertTrue(message.contains("java.library.path"), message);
    }

    @Test
    void refusesAJarThatLacksTheLibraryWithAMessageThatSaysWhatToDo() {
        String missing = "io/flightpickle/native/linux-x86_64/libno_such_library.so";
        UnsatisfiedLinkError error = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLibrary.copyToTemporaryFile(missing));
        assertTrue(error.getMessage().contains(missing), error.getMessage());
        assertTrue(error.getMessage().contains("make jar"), error.getMessage());
    }
}
