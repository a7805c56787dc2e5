/* http_req.c - the rules of a script's HTTP request; see http_req.h. */
#include "http_req.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct sio_http_allow {
    size_t n;
    char **hosts; /* lower case; "*" = any */
};

sio_http_allow *sio_http_allow_new(const char *const *entries, sio_err *err) {
    sio_http_allow *a = calloc(1, sizeof *a);
    size_t n = 0;
    while (entries && entries[n]) n++;
    if (a == NULL || (n && (a->hosts = calloc(n, sizeof *a->hosts)) == NULL)) goto nomem;
    for (; a->n < n; a->n++)
        if ((a->hosts[a->n] = strdup(entries[a->n])) == NULL) goto nomem;
    return a;
nomem:
    sio_http_allow_free(a);
    sio_err_set(err, SIO_E_NOMEM, "http: out of memory");
    return NULL;
}

void sio_http_allow_free(sio_http_allow *a) {
    if (a == NULL) return;
    for (size_t i = 0; i < a->n; i++) free(a->hosts[i]);
    free(a->hosts);
    free(a);
}

static int allowed(const sio_http_allow *a, const char *host) {
    for (size_t i = 0; a && i < a->n; i++)
        if (strcmp(a->hosts[i], "*") == 0 || strcasecmp(a->hosts[i], host) == 0) return 1;
    return 0;
}

int sio_http_check(const sio_http_allow *allow, const char *url, size_t url_len, sio_err *err) {
    if (strlen(url) != url_len) return sio_err_set(err, SIO_E_INVAL, "http: the url holds NUL");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;
    if (u == NULL) return sio_err_set(err, SIO_E_NOMEM, "http: out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        sio_err_set(err, SIO_E_INVAL, "http: malformed url '%s'", url);
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        sio_err_set(err, SIO_E_SANDBOX, "http: scheme '%s' is not allowed (http, https only)",
                    scheme);
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        sio_err_set(err, SIO_E_INVAL, "http: malformed url '%s'", url);
    } else if (!(ok = allowed(allow, host))) {
        sio_err_set(err, SIO_E_SANDBOX, "http: host '%s' is not on the allow-list (SIO_HTTP_ALLOW)",
                    host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}
