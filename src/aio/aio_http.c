/*
 * aio_http.c - HTTP requests on libcurl's multi-socket API, driven by uv.
 *
 * curl tells us which sockets to watch (socket_cb) and when to wake up
 * (timer_cb); uv polls call curl_multi_socket_action, and finished transfers
 * are reaped after each action.  Only http and https, no redirects (a redirect
 * could leave the allow-list), TLS verification on unless configured off.
 * Everything a script gives (method, URL, header names and values) is
 * checked before a byte is sent: nothing it passes can end a header line
 * or start another request.
 */
#include "aio_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* The most header bytes a response may have (curl's own limit is 100 KiB). */
#define HTTP_MAX_HEADERS (64 * 1024)

/* Per-socket poll handle, kept as curl's socket data. */
typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    sio_aio *aio;
} sock_ctx;

static void free_sock(uv_handle_t *h) {
    free(h->data);
}

static void reap(sio_aio *aio) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(aio->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        sio_op *op = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&op);
        sio_aio_result res;
        memset(&res, 0, sizeof res);
        if (op->too_big) {
            sio_err_set(&res.err, SIO_E_LIMIT, "http: response body larger than %zu bytes",
                        aio->cfg.http_max_body);
        } else if (op->hdrs_too_big) {
            sio_err_set(&res.err, SIO_E_LIMIT, "http: response headers larger than %d bytes",
                        HTTP_MAX_HEADERS);
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            sio_err_set(&res.err, SIO_E_TIMEOUT, "http: timed out");
        } else if (rc != CURLE_OK) {
            sio_code code = (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                             rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
                             rc == CURLE_GOT_NOTHING)
                                ? SIO_E_UNAVAILABLE
                                : SIO_E_IO;
            sio_err_set(&res.err, code, "http: %s", curl_easy_strerror(rc));
        } else {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.http_status);
            res.body = op->resp ? op->resp : "";
            res.body_len = op->resp_len;
            res.headers = op->resp_hdrs ? op->resp_hdrs : "";
            res.headers_len = op->resp_hdrs_len;
        }
        curl_multi_remove_handle(aio->multi, easy);
        op->easy = NULL;
        sio_op_finish(op, &res);
        curl_easy_cleanup(easy);
    }
}

static void on_poll(uv_poll_t *p, int status, int events) {
    sock_ctx *sc = p->data;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(sc->aio->multi, sc->fd, flags, &running);
    reap(sc->aio);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy;
    sio_aio *aio = userp;
    sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            uv_poll_stop(&sc->poll);
            curl_multi_assign(aio->multi, s, NULL);
            uv_close((uv_handle_t *)&sc->poll, free_sock);
        }
        return 0;
    }
    if (sc == NULL) {
        sc = calloc(1, sizeof *sc);
        if (sc == NULL) return -1;
        sc->fd = s;
        sc->aio = aio;
        uv_poll_init_socket(aio->loop, &sc->poll, s);
        sc->poll.data = sc;
        curl_multi_assign(aio->multi, s, sc);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
    uv_poll_start(&sc->poll, ev, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t) {
    sio_aio *aio = t->data;
    int running;
    curl_multi_socket_action(aio->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    reap(aio);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    sio_aio *aio = userp;
    if (timeout_ms < 0) uv_timer_stop(aio->curl_timer);
    else uv_timer_start(aio->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void free_timer(uv_handle_t *h) {
    free(h);
}

int sio_aio_http_init(sio_aio *aio, sio_err *err) {
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, global_init);
    if ((aio->allow = sio_http_allow_new(aio->cfg.http_allow, err)) == NULL) return -1;
    aio->cfg.http_allow = NULL; /* parsed: not kept */
    aio->multi = curl_multi_init();
    aio->curl_timer = malloc(sizeof *aio->curl_timer);
    if (aio->multi == NULL || aio->curl_timer == NULL)
        return sio_err_set(err, SIO_E_NOMEM, "http: cannot create the curl multi handle");
    uv_timer_init(aio->loop, aio->curl_timer);
    aio->curl_timer->data = aio;
    curl_multi_setopt(aio->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(aio->multi, CURLMOPT_SOCKETDATA, aio);
    curl_multi_setopt(aio->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(aio->multi, CURLMOPT_TIMERDATA, aio);
    return 0;
}

void sio_aio_http_close(sio_aio *aio) {
    sio_http_allow_free(aio->allow);
    aio->allow = NULL;
    if (aio->multi) {
        for (sio_op *op = aio->ops; op; op = op->next) {
            if (op->easy == NULL) continue;
            curl_multi_remove_handle(aio->multi, op->easy);
            curl_easy_cleanup(op->easy);
            op->easy = NULL;
        }
        curl_multi_cleanup(aio->multi);
        aio->multi = NULL;
    }
    if (aio->curl_timer) {
        uv_close((uv_handle_t *)aio->curl_timer, free_timer);
        aio->curl_timer = NULL;
    }
}

/* Appends len bytes to a NUL-terminated buffer (*buf, owned by the op),
 * refusing to grow it past max (*too_big is then set).  Returns len, or 0
 * (which makes curl fail the transfer). */
static size_t append(char **buf, size_t *blen, size_t *cap, const char *data, size_t len,
                     size_t max, int *too_big) {
    if (*blen + len > max) {
        *too_big = 1;
        return 0;
    }
    if (*blen + len + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *blen + len + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (p == NULL) return 0;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *blen, data, len);
    *blen += len;
    (*buf)[*blen] = '\0';
    return len;
}

/* Appends received bytes, refusing more than the configured maximum. */
static size_t on_write(char *data, size_t size, size_t n, void *userp) {
    sio_op *op = userp;
    return append(&op->resp, &op->resp_len, &op->resp_cap, data, size * n,
                  op->aio->cfg.http_max_body, &op->too_big);
}

/* Keeps the header lines of the last response: a status line starts a new
 * response (after a 100 Continue or a 1xx), the blank line ends it. */
static size_t on_header(char *data, size_t size, size_t n, void *userp) {
    sio_op *op = userp;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        op->resp_hdrs_len = 0;
        return len;
    }
    if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) return len;
    return append(&op->resp_hdrs, &op->resp_hdrs_len, &op->resp_hdrs_cap, data, len,
                  HTTP_MAX_HEADERS, &op->hdrs_too_big);
}

/* Adds "Name: value" to op's header list ("Name;" for an empty value,
 * which curl would otherwise take as "remove this header"). */
static int add_header(sio_op *op, const sio_http_header *h) {
    size_t n = h->name_len + h->value_len + 3;
    char *line = malloc(n);
    if (line == NULL) return -1;
    if (h->value_len == 0)
        snprintf(line, n, "%.*s;", (int)h->name_len, h->name);
    else
        snprintf(line, n, "%.*s: %.*s", (int)h->name_len, h->name, (int)h->value_len, h->value);
    struct curl_slist *l = curl_slist_append(op->headers, line);
    free(line);
    if (l == NULL) return -1;
    op->headers = l;
    return 0;
}

uint64_t sio_aio_http(sio_aio *aio, void *owner, const char *method, size_t method_len,
                      const char *url, size_t url_len, const sio_http_header *headers,
                      size_t nheaders, const char *body, size_t body_len, long timeout_ms,
                      sio_err *err) {
    /* the rules every request of a script meets (http_req.h), here too */
    if (sio_http_check_request(method, method_len, url, url_len, headers, nheaders, err) != 0 ||
        sio_http_check(aio->allow, url, url_len, err) != 0)
        return 0;
    sio_op *op = sio_op_new(aio, owner, SIO_AIO_HTTP, err);
    if (op == NULL) return 0;
    char verb[40];
    snprintf(verb, sizeof verb, "%.*s", (int)method_len, method);
    CURL *e = curl_easy_init();
    if (e == NULL) goto nomem;
    op->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : aio->cfg.http_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, aio->cfg.tls_insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, aio->cfg.tls_insecure ? 0L : 2L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, op);
    curl_easy_setopt(e, CURLOPT_PRIVATE, op);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sio-orchestrator/" SIO_VERSION);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, verb);
    if (body != NULL) {
        op->body = malloc(body_len + 1);
        if (op->body == NULL) goto nomem;
        memcpy(op->body, body, body_len);
        op->body[body_len] = '\0';
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    for (size_t i = 0; i < nheaders; i++)
        if (add_header(op, &headers[i]) != 0) goto nomem;
    if (op->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers);
    if (curl_multi_add_handle(aio->multi, e) != CURLM_OK) goto nomem;
    return op->id;
nomem:
    if (op->easy) curl_easy_cleanup(op->easy);
    op->easy = NULL;
    sio_op_drop(op);
    sio_err_set(err, SIO_E_NOMEM, "http: out of memory starting a request");
    return 0;
}
