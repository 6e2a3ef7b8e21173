package io.flightpickle.spark.sql;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The bundle's layout is JSON written by hand: its strings must stay JSON whatever they hold. */
class UdfBundleTest {

    @Test
    void keywordsAreJsonStrings() {
        assertEquals("\"step\"", UdfBundle.jsonString("step"));
        assertEquals("\"a\\\"b\\\\c\\u000a\"", UdfBundle.jsonString("a\"b\\c\n"));
    }
}
