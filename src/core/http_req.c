/* http_req.c - the rules of a script's HTTP request; see http_req.h. */
#include "http_req.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"

/* One entry (sio_http_allow_parse): host "*" = any; port -1 = any, 0 =
 * the scheme's default only. */
typedef struct allow_entry {
    char host[256];
    int port;
} allow_entry;

struct sio_http_allow {
    size_t n;
    allow_entry *e;
};

sio_http_allow *sio_http_allow_new(const char *const *entries, sio_err *err) {
    sio_http_allow *a = calloc(1, sizeof *a);
    size_t n = 0;
    while (entries && entries[n]) n++;
    if (a == NULL || (n && (a->e = calloc(n, sizeof *a->e)) == NULL)) {
        sio_http_allow_free(a);
        sio_err_set(err, SIO_E_NOMEM, "http: out of memory");
        return NULL;
    }
    for (; a->n < n; a->n++) {
        allow_entry *e = &a->e[a->n];
        if (sio_http_allow_parse(entries[a->n], e->host, sizeof e->host, &e->port, err) != 0) {
            sio_http_allow_free(a);
            return NULL;
        }
    }
    return a;
}

void sio_http_allow_free(sio_http_allow *a) {
    if (a == NULL) return;
    free(a->e);
    free(a);
}

/* Does the allow-list let a request go to host:port with this scheme? */
static int allowed(const sio_http_allow *a, const char *scheme, const char *host, int port) {
    size_t hn = strlen(host);
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') host++, hn -= 2; /* IPv6 */
    int dflt = strcasecmp(scheme, "https") == 0 ? 443 : 80;
    for (size_t i = 0; a && i < a->n; i++) {
        const allow_entry *e = &a->e[i];
        if (strcmp(e->host, "*") == 0) return 1;
        if (strlen(e->host) != hn || strncasecmp(e->host, host, hn) != 0) continue;
        if (e->port == -1 || port == (e->port ? e->port : dflt)) return 1;
    }
    return 0;
}

int sio_http_check(const sio_http_allow *allow, const char *url, size_t url_len, sio_err *err) {
    if (strlen(url) != url_len) return sio_err_set(err, SIO_E_INVAL, "http: the url holds NUL");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int ok = 0;
    if (u == NULL) return sio_err_set(err, SIO_E_NOMEM, "http: out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        sio_err_set(err, SIO_E_INVAL, "http: malformed url '%s'", url);
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        sio_err_set(err, SIO_E_SANDBOX, "http: scheme '%s' is not allowed (http, https only)",
                    scheme);
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        sio_err_set(err, SIO_E_INVAL, "http: malformed url '%s'", url);
    } else if (!(ok = allowed(allow, scheme, host, atoi(port)))) {
        sio_err_set(err, SIO_E_SANDBOX,
                    "http: %s:%s is not on the allow-list (SIO_HTTP_ALLOW; a host without "
                    "a port allows only the scheme's default port)",
                    host, port);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}

/* An RFC 9110 token (a method or a header name): 1+ of tchar. */
static int is_token(const char *s, size_t n) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c != '\0' && strchr(extra, c))))
            return 0;
    }
    return 1;
}

/* Where s (n bytes) holds CR, LF or NUL, a name for it; else NULL. */
static const char *line_breaker(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') return "CR";
        if (s[i] == '\n') return "LF";
        if (s[i] == '\0') return "NUL";
    }
    return NULL;
}

int sio_http_check_request(const char *method, size_t method_len, const char *url,
                           size_t url_len, const sio_http_header *h, size_t nh, sio_err *err) {
    const char *bad;
    if (method_len > 32 || !is_token(method, method_len))
        return sio_err_set(err, SIO_E_INVAL, "http: invalid method '%.*s' (a token such as GET)",
                           (int)(method_len > 40 ? 40 : method_len), method);
    if ((bad = line_breaker(url, url_len)) != NULL)
        return sio_err_set(err, SIO_E_INVAL, "http: the url holds %s", bad);
    for (size_t i = 0; i < nh; i++) {
        int nn = (int)(h[i].name_len > 60 ? 60 : h[i].name_len);
        if (!is_token(h[i].name, h[i].name_len))
            return sio_err_set(err, SIO_E_INVAL, "http: invalid header name '%.*s'%s", nn,
                               h[i].name, line_breaker(h[i].name, h[i].name_len)
                                              ? " (it holds CR, LF or NUL)" : " (not a token)");
        if ((bad = line_breaker(h[i].value, h[i].value_len)) != NULL)
            return sio_err_set(err, SIO_E_INVAL, "http: the value of header '%.*s' holds %s", nn,
                               h[i].name, bad);
        if ((h[i].name_len == 14 && strncasecmp(h[i].name, "Content-Length", 14) == 0) ||
            (h[i].name_len == 17 && strncasecmp(h[i].name, "Transfer-Encoding", 17) == 0))
            return sio_err_set(err, SIO_E_INVAL,
                               "http: header '%.*s' is set by the host from the body", nn,
                               h[i].name);
    }
    return 0;
}
