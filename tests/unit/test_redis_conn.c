/* test_redis_conn.c - sio_redis_open against a scripted Redis: what is
 * sent (AUTH with the ACL user, one argument per value, then PING) and how
 * each answer is judged (opened, refused for good, or silent: try again). */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "redis_conn.h"

#define MAX_CMDS 5

/* A Redis of one connection: reads each command (RESP) and answers it with
 * the next scripted reply; when the script ends it reads (and counts) one
 * more command, unanswered, and closes the connection. */
typedef struct fake {
    int listen_fd;
    int port;
    const char *replies[MAX_CMDS]; /* NULL-terminated */
    char cmds[MAX_CMDS][256];      /* each command received, its arguments joined by '|' */
    int ncmds;
    pthread_t thread;
} fake;

/* Reads one line ending in \r\n into buf (without it); 0 on EOF. */
static int read_line(int fd, char *buf, size_t n) {
    size_t i = 0;
    char c;
    while (read(fd, &c, 1) == 1) {
        if (c == '\n' && i > 0 && buf[i - 1] == '\r') {
            buf[i - 1] = '\0';
            return 1;
        }
        if (i + 1 < n) buf[i++] = c;
    }
    return 0;
}

/* Reads one RESP array of bulk strings into out; 0 on EOF. */
static int read_command(int fd, char *out, size_t n) {
    char line[256];
    if (!read_line(fd, line, sizeof line) || line[0] != '*') return 0;
    int argc = atoi(line + 1);
    out[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (!read_line(fd, line, sizeof line) || line[0] != '$') return 0;
        size_t len = (size_t)atoi(line + 1);
        char arg[128] = "";
        size_t got = 0;
        while (got < len + 2) { /* the bytes and their \r\n */
            char c;
            if (read(fd, &c, 1) != 1) return 0;
            if (got < len && got + 1 < sizeof arg) arg[got] = c;
            got++;
        }
        arg[len < sizeof arg ? len : sizeof arg - 1] = '\0';
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "|" : "", arg);
    }
    return 1;
}

static void *serve(void *arg) {
    fake *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    int i = 0;
    for (; f->replies[i]; i++) {
        if (!read_command(fd, f->cmds[f->ncmds], sizeof f->cmds[0])) break;
        f->ncmds++;
        if (write(fd, f->replies[i], strlen(f->replies[i])) < 0) break;
    }
    /* One more command is counted, unanswered, until the client closes. */
    if (read_command(fd, f->cmds[f->ncmds], sizeof f->cmds[0])) f->ncmds++;
    close(fd);
    return NULL;
}

/* Starts a fake answering with the replies given (raw RESP, then NULL). */
static void fake_start(fake *f, ...) {
    memset(f, 0, sizeof *f);
    va_list ap;
    va_start(ap, f);
    for (int i = 0; i < MAX_CMDS - 1; i++)
        if ((f->replies[i] = va_arg(ap, const char *)) == NULL) break;
    va_end(ap);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
}

static void fake_join(fake *f) {
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

/* The parts of a config sio_redis_open reads. */
static sio_config config_for(int port, char *addr, size_t n, const char *user, const char *pass) {
    snprintf(addr, n, "127.0.0.1:%d", port);
    sio_config c;
    memset(&c, 0, sizeof c);
    c.redis_addr = addr, c.redis_host = "127.0.0.1", c.redis_port = port;
    c.redis_username = user, c.redis_password = pass;
    return c;
}

/* Opens against f (started) with the credentials given, closes what it
 * opened (*opened says whether there was a connection) and joins f. */
static sio_redis_open_result open_with(fake *f, const char *user, const char *pass, int *opened,
                                       sio_err *err) {
    char addr[64];
    sio_config cfg = config_for(f->port, addr, sizeof addr, user, pass);
    redisContext *c;
    sio_redis_open_result r = sio_redis_open(&cfg, 10000, &c, err);
    *opened = c != NULL;
    if (c) redisFree(c);
    fake_join(f);
    return r;
}

static void without_credentials_only_ping(void **state) {
    (void)state;
    fake f;
    fake_start(&f, "+PONG\r\n", NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, NULL, NULL, &c, &err), SIO_REDIS_OPENED);
    assert_true(c);
    assert_int_equal(f.ncmds, 1);
    assert_string_equal(f.cmds[0], "PING");
}

static void acl_user_auth_then_ping(void **state) {
    (void)state;
    fake f;
    fake_start(&f, "+OK\r\n", "+PONG\r\n", NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, "sio-orchestrator", "pass word", &c, &err), SIO_REDIS_OPENED);
    assert_int_equal(f.ncmds, 2);
    assert_string_equal(f.cmds[0], "AUTH|sio-orchestrator|pass word"); /* one argument */
    assert_string_equal(f.cmds[1], "PING");
}

static void password_only_auth(void **state) {
    (void)state;
    fake f;
    fake_start(&f, "+OK\r\n", "+PONG\r\n", NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, NULL, "s3cret", &c, &err), SIO_REDIS_OPENED);
    assert_string_equal(f.cmds[0], "AUTH|s3cret");
}

static void wrong_password_is_refused(void **state) {
    (void)state;
    fake f;
    fake_start(&f, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, "sio-orchestrator", "not-it", &c, &err), SIO_REDIS_REFUSED);
    assert_false(c);
    char want[128];
    snprintf(want, sizeof want, "redis at 127.0.0.1:%d refused AUTH: WRONGPASS", f.port);
    assert_non_null(strstr(err.msg, want));
    assert_null(strstr(err.msg, "not-it"));
    assert_int_equal(f.ncmds, 1); /* no PING after a refused AUTH */
}

static void noauth_on_ping_is_refused(void **state) {
    (void)state;
    fake f;
    fake_start(&f, "-NOAUTH Authentication required.\r\n", NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, NULL, NULL, &c, &err), SIO_REDIS_REFUSED);
    assert_non_null(strstr(err.msg, "refused PING: NOAUTH"));
}

static void loading_is_silent(void **state) {
    (void)state;
    fake f;
    fake_start(&f, "-LOADING Redis is loading the dataset in memory\r\n", NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, NULL, NULL, &c, &err), SIO_REDIS_SILENT);
    assert_false(c);
    assert_non_null(strstr(err.msg, "LOADING"));
}

static void closed_without_a_reply_is_silent(void **state) {
    (void)state;
    fake f;
    fake_start(&f, NULL);
    int c;
    sio_err err;
    assert_int_equal(open_with(&f, NULL, NULL, &c, &err), SIO_REDIS_SILENT);
    assert_non_null(strstr(err.msg, "did not answer PING"));
}

static void nobody_listening_is_silent(void **state) {
    (void)state;
    /* a port that was just ours, closed: connection refused */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    char addr[64];
    sio_config cfg = config_for(ntohs(a.sin_port), addr, sizeof addr, NULL, NULL);
    redisContext *c;
    sio_err err;
    assert_int_equal(sio_redis_open(&cfg, 10000, &c, &err), SIO_REDIS_SILENT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "did not answer"));
    assert_non_null(strstr(err.msg, addr));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(without_credentials_only_ping),
        cmocka_unit_test(acl_user_auth_then_ping),
        cmocka_unit_test(password_only_auth),
        cmocka_unit_test(wrong_password_is_refused),
        cmocka_unit_test(noauth_on_ping_is_refused),
        cmocka_unit_test(loading_is_silent),
        cmocka_unit_test(closed_without_a_reply_is_silent),
        cmocka_unit_test(nobody_listening_is_silent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
