package org.apache.arrow.c.jni;

import io.flightpickle.Native;

/**
 * The native half of Arrow Java's C Data Interface, for the copy of arrow-c-data shaded into the
 * plugin jar.
 *
 * <p>arrow-c-data calls these methods to install and call the C release callbacks of the structs it
 * exports and imports. Its own implementation is a JNI library whose symbols name this package, so
 * it cannot serve the relocated copy (this class is relocated along with it, to
 * {@code io.flightpickle.shaded.arrow.c.jni}); the flightpickle JNI library implements them
 * instead. The array streams of the interface are not used by the plugin and are refused.
 */
public class JniWrapper {

    private static final JniWrapper INSTANCE = new JniWrapper();

    private JniWrapper() {}

    public static JniWrapper get() {
        return INSTANCE;
    }

    public void releaseSchema(long memoryAddress) {
        Native.arrowRelease(memoryAddress, false);
    }

    public void releaseArray(long memoryAddress) {
        Native.arrowRelease(memoryAddress, true);
    }

    public void exportSchema(long memoryAddress, PrivateData privateData) {
        Native.arrowExport(memoryAddress, privateData, false);
    }

    public void exportArray(long memoryAddress, PrivateData privateData) {
        Native.arrowExport(memoryAddress, privateData, true);
    }

    public void getNextArrayStream(long streamAddress, long arrayAddress) throws CDataJniException {
        throw streamsUnsupported();
    }

    public void getSchemaArrayStream(long streamAddress, long arrayAddress) throws CDataJniException {
        throw streamsUnsupported();
    }

    public void releaseArrayStream(long memoryAddress) {
        throw streamsUnsupported();
    }

    public void exportArrayStream(long memoryAddress, PrivateData privateData) {
        throw streamsUnsupported();
    }

    private static UnsupportedOperationException streamsUnsupported() {
        return new UnsupportedOperationException(
                "Arrow C array streams are not supported by the flightpickle plugin's copy of arrow-c-data");
    }
}
