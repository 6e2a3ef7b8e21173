package io.flightpickle.spark;

import org.apache.spark.api.python.PythonFunction;
import scala.collection.immutable.ArraySeq;
import scala.collection.immutable.Seq;

/** The bytes of Python UDF commands, as the check rule and the SQL extension's operators read them. */
public final class PythonCommands {

    private PythonCommands() {}

    /** The command's bytes; PySpark's commands are byte arrays wrapped without a copy. */
    public static byte[] bytes(PythonFunction function) {
        Seq<Object> command = function.command();
        if (command instanceof ArraySeq.ofByte wrapped) {
            return wrapped.unsafeArray();
        }
        byte[] bytes = new byte[command.length()];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (Byte) command.apply(i);
        }
        return bytes;
    }
}
