/* ops.c - see ops.h. */
#include "ops.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "catalog.h"
#include "health.h"
#include "metrics.h"

struct sio_ops {
    struct MHD_Daemon *d;
    int port;
};

static const char prom_type[] = "text/plain; version=0.0.4; charset=utf-8";
static const char json_type[] = "application/json";

/* Queues body (malloc'd, taken over; NULL = out of memory -> 500). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len) {
    static char oom[] = "out of memory\n";
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof oom - 1, oom, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, body ? type : "text/plain");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, body ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result plain(struct MHD_Connection *conn, unsigned status, const char *text) {
    char *b = strdup(text);
    return reply(conn, status, "text/plain; charset=utf-8", b, b ? strlen(b) : 0);
}

/* A JSON endpoint answering 200 when rc is 1, 503 when 0. */
static enum MHD_Result json_status(struct MHD_Connection *conn, int rc, char *body) {
    return reply(conn, rc == 1 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, json_type, body,
                 body ? strlen(body) : 0);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)cls, (void)version, (void)upload;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_size) { /* a body we do not want */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return plain(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    char *body = NULL;
    size_t len = 0;
    if (strcmp(url, "/metrics") == 0) {
        body = sio_metrics_expose(&len);
        return reply(conn, MHD_HTTP_OK, prom_type, body, len);
    }
    if (strcmp(url, "/healthz") == 0) {
        int rc = sio_health_live(&body);
        return json_status(conn, rc, body);
    }
    if (strcmp(url, "/readyz") == 0) {
        int rc = sio_health_ready(&body);
        return json_status(conn, rc, body);
    }
    if (strcmp(url, "/workflows") == 0) {
        body = sio_catalog_json(&len);
        return reply(conn, MHD_HTTP_OK, json_type, body, len);
    }
    return plain(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz, /readyz, /workflows\n");
}

sio_ops *sio_ops_start(const char *host, int port, sio_err *err) {
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gai = getaddrinfo(host, ports, &hints, &ai);
    if (gai != 0) {
        sio_err_set(err, SIO_E_IO, "OPS_ADDR %s:%d: %s", host, port, gai_strerror(gai));
        return NULL;
    }
    sio_ops *o = calloc(1, sizeof *o);
    if (o == NULL) {
        freeaddrinfo(ai);
        sio_err_set(err, SIO_E_NOMEM, "ops: out of memory");
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    o->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, NULL,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (o->d == NULL) {
        free(o);
        sio_err_set(err, SIO_E_IO, "OPS_ADDR %s:%d: cannot listen (address in use?)", host, port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(o->d, MHD_DAEMON_INFO_BIND_PORT);
    o->port = info ? info->port : port;
    return o;
}

int sio_ops_port(const sio_ops *o) {
    return o ? o->port : 0;
}

void sio_ops_stop(sio_ops *o) {
    if (o == NULL) return;
    MHD_stop_daemon(o->d);
    free(o);
}
