package io.flightpickle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The jar, the Cargo workspace and the native library must all carry one version. */
class VersionTest {

    @Test
    void theJarKnowsItsVersionFromTheBuild() {
        assertTrue(BuildInfo.version().matches("\\d+\\.\\d+\\.\\d+"), BuildInfo.version());
    }

    @Test
    void thePomAndTheCargoWorkspaceHaveTheSameVersion() throws Exception {
        assertEquals(cargoWorkspaceVersion(), BuildInfo.version(),
                "jvm/pom.xml <version> must equal [workspace.package] version in Cargo.toml");
    }

    @Test
    void theNativeCoreHasTheJarsVersion() {
        assertEquals(BuildInfo.version(), Native.coreVersion());
        assertEquals(BuildInfo.version(), NativeCore.loadMatchingVersion());
    }

    @Test
    void aMismatchNamesBothVersionsAndWhereTheLibraryCameFrom() {
        IllegalStateException error = assertThrows(IllegalStateException.class,
                () -> NativeCore.requireSameVersion("0.1.0", "0.2.0", "java.library.path"));
        String message = error.getMessage();
        assertTrue(message.contains("plugin jar is 0.1.0"), message);
        assertTrue(message.contains("has core 0.2.0"), message);
        assertTrue(message.contains("loaded from java.library.path"), message);
    }

    private static String cargoWorkspaceVersion() throws Exception {
        Path cargoToml = Path.of(System.getProperty("flightpickle.test.cargoToml", "../Cargo.toml"));
        String text = Files.readString(cargoToml);
        Matcher workspacePackage = Pattern
                .compile("(?ms)^\\[workspace\\.package\\]\\s*$(.*?)(?=^\\[|\\z)")
                .matcher(text);
        assertTrue(workspacePackage.find(), cargoToml + " has no [workspace.package] table");
        Matcher version = Pattern.compile("(?m)^version\\s*=\\s*\"([^\"]+)\"")
                .matcher(workspacePackage.group(1));
        assertTrue(version.find(), cargoToml + " has no version in [workspace.package]");
        return version.group(1);
    }
}
