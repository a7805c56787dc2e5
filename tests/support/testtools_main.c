/*
 * testtools_main.c - sio-orchestrator with native tools that only tests
 * want (a test build; see include/sio/tool.h):
 *
 *   wedge {url}   GETs url with a blocking request, on the worker thread,
 *                 and returns the body.  It breaks the native-tool contract
 *                 on purpose: pointed at the test server's gate
 *                 (tests/support/httpd.h), it wedges its worker in C until
 *                 the test releases the request - a worker no loop, limit
 *                 or signal can interrupt, created without any timing.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sio/tool.h"

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t size, size_t n, void *ud) {
    buf *b = ud;
    char *d = realloc(b->data, b->len + size * n + 1);
    if (d == NULL) return 0;
    memcpy(d + b->len, p, size * n);
    b->data = d;
    b->len += size * n;
    d[b->len] = '\0';
    return size * n;
}

static void wedge(sio_tool_call *call, const char *args, size_t len, void *ud) {
    (void)ud;
    json_t *a = json_loadb(args, len, 0, NULL);
    const char *url = json_string_value(json_object_get(a, "url"));
    if (url == NULL) {
        json_decref(a);
        sio_tool_fail(call, 0, "wedge: args need a url");
        return;
    }
    buf b = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c); /* blocks the worker thread */
    curl_easy_cleanup(c);
    json_decref(a);
    if (rc == CURLE_OK) sio_tool_done(call, b.data ? b.data : "", b.len);
    else sio_tool_fail(call, 1, curl_easy_strerror(rc));
    free(b.data);
}

int main(int argc, char **argv, char **envp) {
    sio_tool_register("wedge", wedge, NULL);
    return sio_main(argc, argv, envp);
}
