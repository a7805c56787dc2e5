/* httpd.c - see httpd.h.
 *
 * Everything about connections happens on the server's loop thread; the
 * counters, the gate and the recorded requests are shared with the test's
 * threads under mu, and a change the loop must act on (a release) reaches
 * it through the `kick` async handle. */
#include "httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define HEAD_MAX 16384

typedef enum conn_state {
    C_READING,  /* the head has not arrived yet */
    C_HELD,     /* at the gate */
    C_DELAYING, /* released, waiting for delay_ms */
    C_ANSWERED, /* response being written */
    C_CONTROL,  /* a /_gate/ request, answered at once */
    C_WAITING,  /* a /_gate/wait request whose condition is not met yet */
} conn_state;

typedef struct conn conn;

struct test_httpd {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop, kick;
    uv_thread_t thread;
    int port;
    unsigned delay_ms;
    /* Loop thread only. */
    conn *held_head, *held_tail; /* FIFO of held requests */
    conn *waiters;               /* /_gate/wait requests */
    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast when a count changes */
    int received, held, answered, open, max_open;
    int gate_closed;
    long credits; /* requests the gate lets through while closed */
    char **heads;
    int nheads, cap_heads;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    test_httpd *h;
    conn *prev, *next; /* in held or waiters */
    conn_state state;
    int closing;
    int counted_open; /* received, not yet answered */
    test_httpd_count wait_what;
    int wait_n;
    char buf[HEAD_MAX];
    size_t len;
    char path[256];
    uv_write_t wr;
    char out[1024];
    char scratch[4096]; /* request bytes after the head are read and dropped */
};

/* --- lists (loop thread) ---------------------------------------------------*/

static void list_push(conn **head, conn **tail, conn *c) {
    c->next = NULL;
    c->prev = tail ? *tail : NULL;
    if (tail) {
        if (*tail) (*tail)->next = c;
        else *head = c;
        *tail = c;
    } else {
        c->next = *head;
        if (*head) (*head)->prev = c;
        *head = c;
    }
}

static void list_unlink(conn **head, conn **tail, conn *c) {
    if (c->prev) c->prev->next = c->next;
    else *head = c->next;
    if (c->next) c->next->prev = c->prev;
    else if (tail) *tail = c->prev;
    c->prev = c->next = NULL;
}

/* --- counts ----------------------------------------------------------------*/

static int count_locked(test_httpd *h, test_httpd_count what) {
    return what == TEST_HTTPD_HELD ? h->held : what == TEST_HTTPD_RECEIVED ? h->received : h->answered;
}

static int stats_json(test_httpd *h, char *buf, size_t n) {
    pthread_mutex_lock(&h->mu);
    int len = snprintf(buf, n, "{\"received\":%d,\"held\":%d,\"answered\":%d,\"max_open\":%d}",
                       h->received, h->held, h->answered, h->max_open);
    pthread_mutex_unlock(&h->mu);
    return len;
}

/* --- connections ------------------------------------------------------------*/

static void conn_free(uv_handle_t *hd) {
    conn *c = hd->data;
    if (--c->closing == 0) free(c);
}

static void conn_close(conn *c) {
    if (c->closing) return;
    test_httpd *h = c->h;
    if (c->state == C_HELD) list_unlink(&h->held_head, &h->held_tail, c);
    if (c->state == C_WAITING) list_unlink(&h->waiters, NULL, c);
    pthread_mutex_lock(&h->mu);
    if (c->state == C_HELD) h->held--;
    if (c->counted_open) h->open--;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    c->counted_open = 0;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_free);
    uv_close((uv_handle_t *)&c->timer, conn_free);
}

static void on_written(uv_write_t *w, int status) {
    (void)status;
    conn_close(w->data);
}

static void respond(conn *c, const char *body, int blen) {
    int len = snprintf(c->out, sizeof c->out,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n%.*s",
                       blen, blen, body);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)len);
    c->wr.data = c;
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void check_waiters(test_httpd *h);

/* A released request's delay is over: answer it. */
static void answer(uv_timer_t *t) {
    conn *c = t->data;
    test_httpd *h = c->h;
    c->state = C_ANSWERED;
    pthread_mutex_lock(&h->mu);
    int n = ++h->answered;
    h->open--;
    c->counted_open = 0;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    char body[384];
    int blen = snprintf(body, sizeof body, "{\"path\":\"%s\",\"n\":%d}", c->path, n);
    respond(c, body, blen);
    check_waiters(h);
}

static void let_through(conn *c) {
    c->state = C_DELAYING;
    uv_timer_start(&c->timer, answer, c->h->delay_ms, 0);
}

/* Answers the waiters whose condition now holds. */
static void check_waiters(test_httpd *h) {
    for (conn *c = h->waiters, *next; c; c = next) {
        next = c->next;
        pthread_mutex_lock(&h->mu);
        int got = count_locked(h, c->wait_what);
        pthread_mutex_unlock(&h->mu);
        if (got < c->wait_n) continue;
        list_unlink(&h->waiters, NULL, c);
        c->state = C_CONTROL;
        char body[256];
        respond(c, body, stats_json(h, body, sizeof body));
    }
}

/* Lets held requests through while the gate allows. */
static void drain_gate(test_httpd *h) {
    for (;;) {
        conn *c = h->held_head;
        if (c == NULL) break;
        pthread_mutex_lock(&h->mu);
        int pass = !h->gate_closed || h->credits > 0;
        if (pass) {
            if (h->gate_closed) h->credits--;
            h->held--;
            pthread_cond_broadcast(&h->cv);
        }
        pthread_mutex_unlock(&h->mu);
        if (!pass) break;
        list_unlink(&h->held_head, &h->held_tail, c);
        let_through(c);
    }
    check_waiters(h);
}

static void on_kick(uv_async_t *a) {
    drain_gate(a->data);
}

/* A /_gate/ request. */
static void control(conn *c, const char *path) {
    test_httpd *h = c->h;
    const char *q = strchr(path, '?');
    const char *arg = q ? strchr(q, '=') : NULL;
    int n = arg ? atoi(arg + 1) : 0;
    c->state = C_CONTROL;
    if (strncmp(path, "/_gate/hold", 11) == 0) {
        test_httpd_hold(h);
    } else if (strncmp(path, "/_gate/release", 14) == 0) {
        test_httpd_release(h, n);
    } else if (strncmp(path, "/_gate/open", 11) == 0) {
        test_httpd_open(h);
    } else if (strncmp(path, "/_gate/wait", 11) == 0 && q) {
        c->wait_what = strncmp(q, "?held=", 6) == 0       ? TEST_HTTPD_HELD
                       : strncmp(q, "?received=", 10) == 0 ? TEST_HTTPD_RECEIVED
                                                           : TEST_HTTPD_ANSWERED;
        c->wait_n = n;
        c->state = C_WAITING;
        list_push(&h->waiters, NULL, c);
        check_waiters(h);
        return;
    }
    char body[256];
    respond(c, body, stats_json(h, body, sizeof body));
}

/* The head of a request arrived: a control request, or one to record and
 * hold or let through. */
static void on_head(conn *c, size_t head_len) {
    test_httpd *h = c->h;
    sscanf(c->buf, "%*s %255s", c->path);
    if (strncmp(c->path, "/_gate/", 7) == 0) {
        control(c, c->path);
        return;
    }
    char *copy = malloc(head_len + 1);
    if (copy) {
        memcpy(copy, c->buf, head_len);
        copy[head_len] = '\0';
    }
    pthread_mutex_lock(&h->mu);
    if (copy && h->nheads == h->cap_heads) {
        int cap = h->cap_heads ? h->cap_heads * 2 : 64;
        char **p = realloc(h->heads, (size_t)cap * sizeof *p);
        if (p) h->heads = p, h->cap_heads = cap;
    }
    if (copy && h->nheads < h->cap_heads) h->heads[h->nheads++] = copy, copy = NULL;
    h->received++;
    if (++h->open > h->max_open) h->max_open = h->open;
    c->counted_open = 1;
    int pass = !h->gate_closed || h->credits > 0;
    if (pass && h->gate_closed) h->credits--;
    if (!pass) h->held++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    free(copy);
    if (pass) {
        let_through(c);
    } else {
        c->state = C_HELD;
        list_push(&h->held_head, &h->held_tail, c);
    }
    check_waiters(h);
}

static void on_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *b) {
    (void)sz;
    conn *c = hd->data;
    if (c->state == C_READING && c->len < sizeof c->buf - 1) {
        b->base = c->buf + c->len;
        b->len = sizeof c->buf - 1 - c->len;
    } else {
        b->base = c->scratch;
        b->len = sizeof c->scratch;
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->state != C_READING || b->base == c->scratch) return;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (end) on_head(c, (size_t)(end + 4 - c->buf));
}

static void on_conn(uv_stream_t *srv, int status) {
    if (status < 0) return;
    test_httpd *h = srv->data;
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) return;
    c->h = h;
    uv_tcp_init(&h->loop, &c->tcp);
    uv_timer_init(&h->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_all(uv_handle_t *hd, void *arg) {
    test_httpd *h = arg;
    if (uv_is_closing(hd)) return;
    if (hd == (uv_handle_t *)&h->server || hd == (uv_handle_t *)&h->stop ||
        hd == (uv_handle_t *)&h->kick)
        uv_close(hd, NULL);
    else
        conn_close(hd->data);
}

static void on_stop(uv_async_t *a) {
    uv_walk(a->loop, close_all, a->data);
}

static void run(void *arg) {
    test_httpd *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
}

test_httpd *test_httpd_start(unsigned delay_ms) {
    test_httpd *h = calloc(1, sizeof *h);
    if (h == NULL) return NULL;
    h->delay_ms = delay_ms;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    uv_loop_init(&h->loop);
    uv_tcp_init(&h->loop, &h->server);
    h->server.data = h;
    uv_async_init(&h->loop, &h->stop, on_stop);
    h->stop.data = h;
    uv_async_init(&h->loop, &h->kick, on_kick);
    h->kick.data = h;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&h->server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&h->server, 4096, on_conn) != 0) {
        return NULL;
    }
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&h->server, (struct sockaddr *)&got, &len);
    h->port = ntohs(got.sin_port);
    uv_thread_create(&h->thread, run, h);
    return h;
}

int test_httpd_port(const test_httpd *h) {
    return h->port;
}

static int read_count(test_httpd *h, const int *field) {
    pthread_mutex_lock(&h->mu);
    int n = *field;
    pthread_mutex_unlock(&h->mu);
    return n;
}

int test_httpd_requests(test_httpd *h) {
    return read_count(h, &h->answered);
}

int test_httpd_max_open(test_httpd *h) {
    return read_count(h, &h->max_open);
}

int test_httpd_received(test_httpd *h) {
    return read_count(h, &h->received);
}

int test_httpd_held(test_httpd *h) {
    return read_count(h, &h->held);
}

void test_httpd_hold(test_httpd *h) {
    pthread_mutex_lock(&h->mu);
    h->gate_closed = 1;
    h->credits = 0;
    pthread_mutex_unlock(&h->mu);
}

void test_httpd_release(test_httpd *h, int n) {
    pthread_mutex_lock(&h->mu);
    if (n > 0) h->credits += n;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->kick);
}

void test_httpd_open(test_httpd *h) {
    pthread_mutex_lock(&h->mu);
    h->gate_closed = 0;
    h->credits = 0;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->kick);
}

int test_httpd_wait(test_httpd *h, test_httpd_count what, int n, unsigned timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&h->mu);
    int got;
    while ((got = count_locked(h, what)) < n)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT) break;
    got = count_locked(h, what);
    pthread_mutex_unlock(&h->mu);
    return got;
}

char *test_httpd_request(test_httpd *h, int i) {
    pthread_mutex_lock(&h->mu);
    char *r = i >= 0 && i < h->nheads ? strdup(h->heads[i]) : NULL;
    pthread_mutex_unlock(&h->mu);
    return r;
}

void test_httpd_stop(test_httpd *h) {
    if (h == NULL) return;
    uv_async_send(&h->stop);
    uv_thread_join(&h->thread);
    uv_loop_close(&h->loop);
    for (int i = 0; i < h->nheads; i++) free(h->heads[i]);
    free(h->heads);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
