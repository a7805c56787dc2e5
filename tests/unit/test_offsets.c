/* test_offsets.c - commit tracking: order, gaps, rebalances, scale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offsets.h"

#define T "orders"

/* A tracker with T[0] assigned. */
static sio_offsets *new_tracker(void) {
    sio_err err;
    sio_offsets *t = sio_offsets_create(&err);
    assert_non_null(t);
    assert_int_equal(sio_offsets_assign(t, T, 0, &err), 0);
    return t;
}

/* Tracks offset on T[p] and returns its generation. */
static uint64_t track(sio_offsets *t, int32_t p, int64_t offset) {
    uint64_t gen = 0;
    sio_err err;
    assert_int_equal(sio_offsets_track(t, T, p, offset, &gen, &err), 0);
    assert_true(gen > 0);
    return gen;
}

static void in_order(void **state) {
    (void)state;
    sio_offsets *t = new_tracker();
    uint64_t gen = 0;
    for (int64_t o = 100; o < 110; o++) gen = track(t, 0, o);
    assert_int_equal(sio_offsets_inflight(t), 10);
    assert_int_equal(sio_offsets_position(t, T, 0, NULL), 0);
    for (int64_t o = 100; o < 110; o++) {
        int64_t to = -1;
        assert_int_equal(sio_offsets_done(t, T, 0, o, gen, &to), 1);
        assert_int_equal(to, o + 1);
    }
    int64_t pos;
    assert_int_equal(sio_offsets_position(t, T, 0, &pos), 1);
    assert_int_equal(pos, 110);
    assert_int_equal(sio_offsets_inflight(t), 0);
    sio_offsets_destroy(t);
}

static void out_of_order(void **state) {
    (void)state;
    sio_offsets *t = new_tracker();
    uint64_t g = track(t, 0, 4);
    track(t, 0, 5);
    int64_t to = -1;
    assert_int_equal(sio_offsets_done(t, T, 0, 5, g, &to), 0);
    assert_int_equal(to, -1);
    assert_int_equal(sio_offsets_partition_inflight(t, T, 0), 1);
    assert_int_equal(sio_offsets_done(t, T, 0, 4, g, &to), 1);
    assert_int_equal(to, 6);
    /* three unfinished: the middle one first, then the last, then the first */
    track(t, 0, 6), track(t, 0, 7), track(t, 0, 8);
    assert_int_equal(sio_offsets_done(t, T, 0, 7, g, &to), 0);
    assert_int_equal(sio_offsets_done(t, T, 0, 6, g, &to), 1);
    assert_int_equal(to, 8); /* 8 still unfinished */
    assert_int_equal(sio_offsets_done(t, T, 0, 8, g, &to), 1);
    assert_int_equal(to, 9);
    sio_offsets_destroy(t);
}

static void gaps(void **state) {
    (void)state;
    sio_offsets *t = new_tracker();
    uint64_t g = track(t, 0, 10);
    track(t, 0, 13), track(t, 0, 20), track(t, 0, 21), track(t, 0, 40);
    int64_t to = -1;
    assert_int_equal(sio_offsets_done(t, T, 0, 10, g, &to), 1);
    assert_int_equal(to, 13); /* lowest unfinished, skipping the gap */
    assert_int_equal(sio_offsets_done(t, T, 0, 21, g, &to), 0);
    assert_int_equal(sio_offsets_done(t, T, 0, 40, g, &to), 0);
    assert_int_equal(sio_offsets_done(t, T, 0, 15, g, &to), 0); /* never tracked */
    assert_int_equal(sio_offsets_done(t, T, 0, 13, g, &to), 1);
    assert_int_equal(to, 20);
    assert_int_equal(sio_offsets_partition_window(t, T, 0), 3); /* 20, 21 done, 40 done */
    assert_int_equal(sio_offsets_done(t, T, 0, 20, g, &to), 1);
    assert_int_equal(to, 41);
    assert_int_equal(sio_offsets_partition_window(t, T, 0), 0);
    /* after the window emptied, a gap before the next offset */
    track(t, 0, 50);
    assert_int_equal(sio_offsets_done(t, T, 0, 50, g, &to), 1);
    assert_int_equal(to, 51);
    sio_offsets_destroy(t);
}

static void bad_calls(void **state) {
    (void)state;
    sio_offsets *t = new_tracker();
    sio_err err;
    uint64_t g = track(t, 0, 7);
    assert_int_equal(sio_offsets_track(t, T, 0, 7, NULL, &err), -1); /* not increasing */
    assert_int_equal(err.code, SIO_E_INVAL);
    assert_int_equal(sio_offsets_track(t, T, 0, 3, NULL, &err), -1);
    assert_int_equal(sio_offsets_track(t, T, 1, 3, NULL, &err), -1); /* not assigned */
    assert_non_null(strstr(err.msg, "not assigned"));
    assert_int_equal(sio_offsets_track(t, "other", 0, 3, NULL, &err), -1);
    assert_int_equal(sio_offsets_done(t, T, 1, 7, g, NULL), 0);
    assert_int_equal(sio_offsets_done(t, T, 0, 7, g, NULL), 1);
    assert_int_equal(sio_offsets_done(t, T, 0, 7, g, NULL), 0); /* done twice */
    assert_int_equal(sio_offsets_inflight(t), 0);
    sio_offsets_destroy(NULL);
    sio_offsets_destroy(t);
}

static void revoke_ignores_late_completions(void **state) {
    (void)state;
    sio_offsets *t = new_tracker();
    sio_err err;
    uint64_t g = track(t, 0, 1);
    track(t, 0, 2);
    assert_int_equal(sio_offsets_done(t, T, 0, 2, g, NULL), 0);
    sio_offsets_revoke(t, T, 0);
    sio_offsets_revoke(t, T, 0);       /* twice is fine */
    sio_offsets_revoke(t, "nope", 3);  /* unknown is fine */
    assert_int_equal(sio_offsets_inflight(t), 0);
    int64_t to = -1;
    assert_int_equal(sio_offsets_done(t, T, 0, 1, g, &to), 0);
    assert_int_equal(to, -1);
    assert_int_equal(sio_offsets_position(t, T, 0, &to), 0);
    assert_int_equal(sio_offsets_track(t, T, 0, 3, NULL, &err), -1);
    sio_offsets_destroy(t);
}

static void reassign_starts_new_generation(void **state) {
    (void)state;
    sio_offsets *t = new_tracker();
    sio_err err;
    uint64_t g1 = track(t, 0, 5);
    assert_int_equal(sio_offsets_done(t, T, 0, 5, g1, NULL), 1);
    track(t, 0, 6);
    sio_offsets_revoke(t, T, 0);
    assert_int_equal(sio_offsets_assign(t, T, 0, &err), 0);
    assert_int_equal(sio_offsets_position(t, T, 0, NULL), 0); /* fresh */
    uint64_t g2 = track(t, 0, 6); /* redelivered from the committed offset */
    assert_true(g2 != g1);
    int64_t to = -1;
    assert_int_equal(sio_offsets_current(t, T, 0, g1), 0);
    assert_int_equal(sio_offsets_current(t, T, 0, g2), 1);
    assert_int_equal(sio_offsets_current(t, T, 9, g2), 0); /* not assigned */
    assert_int_equal(sio_offsets_done(t, T, 0, 6, g1, &to), 0); /* the old run's completion */
    assert_int_equal(sio_offsets_partition_inflight(t, T, 0), 1);
    assert_int_equal(sio_offsets_done(t, T, 0, 6, g2, &to), 1);
    assert_int_equal(to, 7);
    /* assign without revoke also starts over */
    track(t, 0, 7);
    assert_int_equal(sio_offsets_assign(t, T, 0, &err), 0);
    assert_int_equal(sio_offsets_inflight(t), 0);
    uint64_t g3 = track(t, 0, 7);
    assert_true(g3 != g2);
    assert_int_equal(sio_offsets_current(t, T, 0, g2), 0);
    assert_int_equal(sio_offsets_done(t, T, 0, 7, g2, NULL), 0);
    /* another partition's generation never matches */
    assert_int_equal(sio_offsets_assign(t, T, 1, &err), 0);
    uint64_t g4 = track(t, 1, 7);
    assert_true(g4 != g3);
    assert_int_equal(sio_offsets_done(t, T, 1, 7, g3, NULL), 0);
    sio_offsets_destroy(t); /* with work in flight: no leaks */
}

/* Collects each_committable calls: a sum and a count. */
typedef struct sink {
    size_t calls;
    int64_t sum;
} sink;

static void collect(void *ud, const char *topic, int32_t partition, int64_t commit_to) {
    sink *s = ud;
    assert_non_null(topic);
    assert_true(partition >= 0);
    s->calls++;
    s->sum += commit_to;
}

static void many_partitions(void **state) {
    (void)state;
    static const char *const topics[] = {"a", "b", "c"};
    sio_err err;
    sio_offsets *t = sio_offsets_create(&err);
    uint64_t gen[3][500];
    for (int k = 0; k < 3; k++)
        for (int32_t p = 0; p < 500; p++) {
            assert_int_equal(sio_offsets_assign(t, topics[k], p, &err), 0);
            for (int64_t o = 0; o < 4; o++)
                assert_int_equal(sio_offsets_track(t, topics[k], p, p * 10 + o, &gen[k][p], &err), 0);
        }
    assert_int_equal(sio_offsets_inflight(t), 3 * 500 * 4);
    sink s = {0};
    assert_int_equal(sio_offsets_each_committable(t, collect, &s), 0);
    /* finish the first two offsets of every odd partition of every topic */
    for (int k = 0; k < 3; k++)
        for (int32_t p = 1; p < 500; p += 2) {
            assert_int_equal(sio_offsets_done(t, topics[k], p, p * 10 + 1, gen[k][p], NULL), 0);
            assert_int_equal(sio_offsets_done(t, topics[k], p, p * 10, gen[k][p], NULL), 1);
        }
    assert_int_equal(sio_offsets_inflight(t), 3 * 500 * 4 - 3 * 250 * 2);
    assert_int_equal(sio_offsets_partition_inflight(t, "b", 3), 2);
    assert_int_equal(sio_offsets_partition_inflight(t, "b", 4), 4);
    assert_int_equal(sio_offsets_each_committable(t, collect, &s), 750);
    int64_t want = 0;
    for (int32_t p = 1; p < 500; p += 2) want += 3 * (p * 10 + 2);
    assert_int_equal(s.sum, want);
    for (int32_t p = 0; p < 500; p++) sio_offsets_revoke(t, "a", p);
    assert_int_equal(sio_offsets_inflight(t), 2 * (250 * 4 + 250 * 2));
    sio_offsets_revoke_all(t);
    assert_int_equal(sio_offsets_inflight(t), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(sio_offsets_each_committable(t, collect, &s), 0);
    sio_offsets_destroy(t);
}

/* xorshift64: a fixed, portable random sequence. */
static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* The reference model: offsets [0, n) with tracked/done flags; `low` is the
 * lowest index that is tracked and unfinished (or n_tracked). */
typedef struct model {
    int64_t *offsets; /* tracked offsets in order */
    bool *done;
    size_t n_tracked, low;
} model;

/* The model's committable position. */
static int64_t model_pos(model *m, int64_t next_off) {
    while (m->low < m->n_tracked && m->done[m->low]) m->low++;
    return m->low < m->n_tracked ? m->offsets[m->low] : next_off;
}

/* Brute force: no unfinished offset lies below pos. */
static void check_never_passes(const model *m, int64_t pos) {
    for (size_t i = 0; i < m->n_tracked; i++)
        if (!m->done[i]) assert_true(m->offsets[i] >= pos);
}

static void random_completion_100k(void **state) {
    (void)state;
    enum { N = 100000 };
    sio_offsets *t = new_tracker();
    model m = {calloc(N, sizeof *m.offsets), calloc(N, sizeof *m.done), 0, 0};
    size_t *pending = calloc(N, sizeof *pending), npending = 0;
    assert_non_null(m.offsets), assert_non_null(m.done), assert_non_null(pending);
    uint64_t seed = 0x9e3779b97f4a7c15ULL, gen = 0;
    int64_t next_off = 1000, reported = -1, to;
    size_t steps = 0;
    while (m.n_tracked < N || npending > 0) {
        bool do_track = m.n_tracked < N && (npending == 0 || rnd(&seed) % 100 < 55);
        if (do_track) {
            if (rnd(&seed) % 10 == 0) next_off += 1 + (int64_t)(rnd(&seed) % 3); /* a gap */
            gen = track(t, 0, next_off);
            m.offsets[m.n_tracked] = next_off++;
            pending[npending++] = m.n_tracked++;
            continue;
        }
        size_t k = (size_t)(rnd(&seed) % npending), idx = pending[k];
        pending[k] = pending[--npending];
        m.done[idx] = true;
        int64_t want = model_pos(&m, next_off);
        int rc = sio_offsets_done(t, T, 0, m.offsets[idx], gen, &to);
        if (rc == 1) {
            assert_int_equal(to, want);
            assert_true(to > reported);
            reported = to;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(reported, want == m.offsets[0] ? -1 : want);
        }
        assert_int_equal(sio_offsets_partition_inflight(t, T, 0), npending);
        if (++steps % 997 == 0 && reported >= 0) check_never_passes(&m, reported);
    }
    assert_int_equal(reported, m.offsets[N - 1] + 1);
    assert_int_equal(sio_offsets_inflight(t), 0);
    free(m.offsets), free(m.done), free(pending);
    sio_offsets_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_order),
        cmocka_unit_test(out_of_order),
        cmocka_unit_test(gaps),
        cmocka_unit_test(bad_calls),
        cmocka_unit_test(revoke_ignores_late_completions),
        cmocka_unit_test(reassign_starts_new_generation),
        cmocka_unit_test(many_partitions),
        cmocka_unit_test(random_completion_100k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
