/* httpd.c - see httpd.h. */
#include "httpd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct test_httpd {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop;
    uv_thread_t thread;
    int port;
    unsigned delay_ms;
    pthread_mutex_t mu;
    int requests, open, max_open;
    char **heads; /* under mu: each request's head, in arrival order */
    int nheads, capheads;
};

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    test_httpd *h;
    char buf[4096];
    size_t len;
    int answered, closing;
    uv_write_t wr;
    char out[512];
} conn;

static void conn_free(uv_handle_t *hd) {
    conn *c = hd->data;
    if (--c->closing == 0) free(c);
}

static void conn_close(conn *c) {
    if (c->closing) return;
    if (c->answered == 1) { /* counted as open, never answered */
        pthread_mutex_lock(&c->h->mu);
        c->h->open--;
        pthread_mutex_unlock(&c->h->mu);
    }
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_free);
    uv_close((uv_handle_t *)&c->timer, conn_free);
}

static void on_written(uv_write_t *w, int status) {
    (void)status;
    conn_close(w->data);
}

static void answer(uv_timer_t *t) {
    conn *c = t->data;
    test_httpd *h = c->h;
    c->answered = 2;
    char path[256] = "/";
    sscanf(c->buf, "%*s %255s", path);
    pthread_mutex_lock(&h->mu);
    int n = ++h->requests;
    h->open--;
    pthread_mutex_unlock(&h->mu);
    char body[384];
    int blen = snprintf(body, sizeof body, "{\"path\":\"%s\",\"n\":%d}", path, n);
    int len = snprintf(c->out, sizeof c->out,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                       blen, body);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)len);
    c->wr.data = c;
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *b) {
    (void)sz;
    conn *c = hd->data;
    b->base = c->buf + c->len;
    b->len = sizeof c->buf - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    (void)b;
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = c->answered ? NULL : strstr(c->buf, "\r\n\r\n");
    if (end) {
        test_httpd *h = c->h;
        c->answered = 1;
        pthread_mutex_lock(&h->mu);
        if (h->nheads == h->capheads) {
            int n = h->capheads ? 2 * h->capheads : 16;
            char **p = realloc(h->heads, (size_t)n * sizeof *p);
            if (p) h->heads = p, h->capheads = n;
        }
        if (h->nheads < h->capheads) h->heads[h->nheads++] = strndup(c->buf, (size_t)(end - c->buf) + 2);
        if (++c->h->open > c->h->max_open) c->h->max_open = c->h->open;
        pthread_mutex_unlock(&c->h->mu);
        uv_timer_start(&c->timer, answer, c->h->delay_ms, 0);
    }
}

static void on_conn(uv_stream_t *srv, int status) {
    if (status < 0) return;
    test_httpd *h = srv->data;
    conn *c = calloc(1, sizeof *c);
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
    if (hd == (uv_handle_t *)&h->server || hd == (uv_handle_t *)&h->stop)
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
    uv_loop_init(&h->loop);
    uv_tcp_init(&h->loop, &h->server);
    h->server.data = h;
    uv_async_init(&h->loop, &h->stop, on_stop);
    h->stop.data = h;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&h->server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&h->server, 1024, on_conn) != 0) {
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

int test_httpd_requests(test_httpd *h) {
    pthread_mutex_lock(&h->mu);
    int n = h->requests;
    pthread_mutex_unlock(&h->mu);
    return n;
}

int test_httpd_max_open(test_httpd *h) {
    pthread_mutex_lock(&h->mu);
    int n = h->max_open;
    pthread_mutex_unlock(&h->mu);
    return n;
}

char *test_httpd_request(test_httpd *h, int i) {
    pthread_mutex_lock(&h->mu);
    char *r = i >= 0 && i < h->nheads && h->heads[i] ? strdup(h->heads[i]) : NULL;
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
    pthread_mutex_destroy(&h->mu);
    free(h);
}
