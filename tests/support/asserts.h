/* asserts.h - assertions shared by the cmocka tests (include after cmocka.h). */
#ifndef SIO_TEST_ASSERTS_H
#define SIO_TEST_ASSERTS_H

#include <string.h>

/* Fails, printing both, when needle is not in hay. */
#define assert_contains(hay, needle)                                            \
    do {                                                                        \
        if (strstr((hay), (needle)) == NULL)                                    \
            fail_msg("'%s' does not contain '%s'", (hay), (needle));           \
    } while (0)

#endif
