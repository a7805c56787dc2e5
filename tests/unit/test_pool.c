/* test_pool.c - the sandbox's small-block pool: sizes map to 16-byte
 * classes, freed blocks are reused, blocks never overlap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sandbox_pool.h"

static void reuse_and_classes(void **state) {
    (void)state;
    sio_pool p = {0};
    void *a = sio_pool_alloc(&p, 10);
    void *b = sio_pool_alloc(&p, 16); /* same class as 10 */
    assert_non_null(a);
    assert_ptr_not_equal(a, b);
    sio_pool_free(&p, a, 10);
    assert_ptr_equal(sio_pool_alloc(&p, 16), a); /* reused by its class */
    void *c = sio_pool_alloc(&p, 17);              /* the next class */
    sio_pool_free(&p, c, 17);
    assert_ptr_not_equal(sio_pool_alloc(&p, 16), c);
    assert_ptr_equal(sio_pool_alloc(&p, 32), c);
    sio_pool_release(&p);
    assert_null(p.chunks);
}

static void blocks_do_not_overlap(void **state) {
    (void)state;
    sio_pool p = {0};
    enum { N = 20000 };
    static unsigned char *blocks[N];
    static size_t sizes[N];
    for (int i = 0; i < N; i++) {
        sizes[i] = 1 + (size_t)(i * 7919) % SIO_POOL_MAX;
        blocks[i] = sio_pool_alloc(&p, sizes[i]);
        assert_non_null(blocks[i]);
        memset(blocks[i], i & 0xff, sizes[i]);
        if (i % 3 == 0) { /* churn: free some, so later blocks reuse them */
            sio_pool_free(&p, blocks[i], sizes[i]);
            blocks[i] = NULL;
        }
    }
    for (int i = 0; i < N; i++) {
        if (blocks[i] == NULL) continue;
        for (size_t k = 0; k < sizes[i]; k++) assert_int_equal(blocks[i][k], i & 0xff);
    }
    sio_pool_release(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reuse_and_classes),
        cmocka_unit_test(blocks_do_not_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
