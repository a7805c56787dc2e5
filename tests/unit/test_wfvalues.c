/* test_wfvalues.c - configuration and secrets for workflows: environment
 * variables, a file of name=value lines, a folder with a file per name (a
 * Kubernetes volume's layout), precedence, the errors, and secrets handed
 * to the process's redactor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "config.h"
#include "files.h"
#include "redact.h"
#include "wfvalues.h"

/* A configuration from env entries (NULL-terminated) and extra NAME=value
 * settings given as environment too. */
static const sio_config *cfg_with(char **envp) {
    char *argv[] = {"test", NULL};
    sio_err err;
    const sio_config *c = sio_config_load(1, argv, envp, NULL, &err);
    if (c == NULL) fail_msg("config: %s", err.msg);
    return c;
}

static const char *get(const sio_wfvalues *v, sio_wfkind k, const char *name) {
    const sio_wfvalue *e = sio_wfvalues_get(v, k, name);
    return e ? e->value : NULL;
}

static void env_variables(void **state) {
    (void)state;
    char *envp[] = {"SIO_CONFIG_USERS_URL=http://users.example/v1", "SIO_SECRET_API_TOKEN=tok-from-env",
                    "SIO_CONFIGURED=not ours", "PATH=/bin", NULL};
    const sio_config *c = cfg_with(envp);
    assert_int_equal(c->n_wf_env, 2);
    sio_err err;
    sio_wfvalues *v = sio_wfvalues_read(c, &err);
    assert_non_null(v);
    assert_string_equal(get(v, SIO_WF_CONFIG, "users_url"), "http://users.example/v1");
    assert_string_equal(get(v, SIO_WF_SECRET, "api_token"), "tok-from-env");
    assert_null(get(v, SIO_WF_CONFIG, "api_token")); /* kinds do not mix */
    assert_int_equal(v->n[SIO_WF_CONFIG], 1);
    sio_wfvalues_free(v);
    sio_config_destroy(c);
}

static void a_file_of_lines_wins_over_env(void **state) {
    (void)state;
    char dir[256], file[300], env_file[400];
    test_make_dir(dir, sizeof dir, "sio-wfv");
    test_write_file(dir, "config.env", "# users service\n\nusers_url = http://a/?x=1&y=2\n"
                                       "quoted=\"  spaced  \"\nusers_url=http://b\n");
    snprintf(file, sizeof file, "%s/config.env", dir);
    snprintf(env_file, sizeof env_file, "WORKFLOW_CONFIG=%s", file);
    char *envp[] = {"SIO_CONFIG_USERS_URL=http://env", "SIO_CONFIG_ONLY_ENV=e", env_file, NULL};
    const sio_config *c = cfg_with(envp);
    sio_err err;
    sio_wfvalues *v = sio_wfvalues_read(c, &err);
    if (v == NULL) fail_msg("%s", err.msg);
    assert_string_equal(get(v, SIO_WF_CONFIG, "users_url"), "http://b"); /* later line wins */
    assert_string_equal(get(v, SIO_WF_CONFIG, "quoted"), "  spaced  ");
    assert_string_equal(get(v, SIO_WF_CONFIG, "only_env"), "e");
    sio_wfvalues_free(v);
    sio_config_destroy(c);
    test_remove_dir(dir);
}

/* A Secret volume: token -> ..data/token, ..data -> ..2026_x (dotted
 * entries skipped); each file's value loses one trailing newline; the
 * values go to the process's redactor. */
static void a_folder_like_a_kubernetes_volume(void **state) {
    (void)state;
    char dir[256], sub[300], link[300], env_dir[400];
    test_make_dir(dir, sizeof dir, "sio-wfv");
    snprintf(sub, sizeof sub, "%s/..2026_12_01", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    test_write_file(sub, "users_token", "tok-3f9a\n");
    test_write_file(sub, "pem", "line1\nline2\n\n");
    snprintf(link, sizeof link, "%s/..data", dir);
    assert_int_equal(symlink("..2026_12_01", link), 0);
    snprintf(link, sizeof link, "%s/users_token", dir);
    assert_int_equal(symlink("..data/users_token", link), 0);
    snprintf(link, sizeof link, "%s/pem", dir);
    assert_int_equal(symlink("..data/pem", link), 0);
    snprintf(env_dir, sizeof env_dir, "WORKFLOW_SECRETS=%s", dir);
    char *envp[] = {env_dir, NULL};
    const sio_config *c = cfg_with(envp);
    sio_err err;
    sio_wfvalues *v = sio_wfvalues_read(c, &err);
    if (v == NULL) fail_msg("%s", err.msg);
    assert_int_equal(v->n[SIO_WF_SECRET], 2);
    assert_string_equal(get(v, SIO_WF_SECRET, "users_token"), "tok-3f9a");
    assert_string_equal(get(v, SIO_WF_SECRET, "pem"), "line1\nline2\n");
    char *red = sio_redact_text(sio_redact_global(), "Bearer tok-3f9a", 15, NULL, NULL);
    assert_non_null(red);
    assert_string_equal(red, "Bearer [redacted:users_token]");
    free(red);
    sio_wfvalues_free(v);
    sio_config_destroy(c);
    test_remove_dir(dir);
}

/* read_err(envp) -> the error message of reading (which must fail). */
static void expect_error(char **envp, const char *want1, const char *want2) {
    const sio_config *c = cfg_with(envp);
    sio_err err;
    sio_wfvalues *v = sio_wfvalues_read(c, &err);
    if (v != NULL) fail_msg("read succeeded; wanted an error with '%s'", want1);
    assert_int_equal(err.code, SIO_E_CONFIG);
    assert_contains(err.msg, want1);
    if (want2) assert_contains(err.msg, want2);
    sio_config_destroy(c);
}

static void errors_name_the_source(void **state) {
    (void)state;
    char dir[256], e1[400];
    test_make_dir(dir, sizeof dir, "sio-wfv");
    test_write_file(dir, "bad-name.env", "ok=1\nhas space=2\n");
    test_write_file(dir, "no-eq.env", "password-without-a-name\n");
    snprintf(e1, sizeof e1, "WORKFLOW_CONFIG=%s/bad-name.env", dir);
    char *a[] = {e1, NULL};
    expect_error(a, "bad-name.env:2", "\"has space\" is not a config name");
    snprintf(e1, sizeof e1, "WORKFLOW_SECRETS=%s/no-eq.env", dir);
    char *b[] = {e1, NULL};
    expect_error(b, "no-eq.env:1: expected name=value", NULL);
    snprintf(e1, sizeof e1, "WORKFLOW_SECRETS=%s/missing", dir);
    char *c[] = {e1, NULL};
    expect_error(c, "WORKFLOW_SECRETS", "No such file or directory");
    char *d[] = {"SIO_SECRET_BIN=\xff\xfe-binary-key", NULL};
    expect_error(d, "secret 'bin' is not UTF-8 text", "SIO_SECRET_BIN");
    char *d2[] = {"SIO_SECRET_PIN=1234", NULL};
    expect_error(d2, "secret 'pin' is shorter than 8 bytes", "would mask unrelated text");
    char *e[] = {"SIO_CONFIG_=x", NULL};
    expect_error(e, "is not a config name", NULL);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/vol", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char sub2[320];
    snprintf(sub2, sizeof sub2, "%s/nested", sub);
    assert_int_equal(mkdir(sub2, 0700), 0);
    snprintf(e1, sizeof e1, "WORKFLOW_CONFIG=%s", sub);
    char *f[] = {e1, NULL};
    expect_error(f, "nested: not a file (one file per config name)", NULL);
    test_remove_dir(dir);
}

static void no_sources_no_values(void **state) {
    (void)state;
    sio_err err;
    sio_wfvalues *v = sio_wfvalues_read(NULL, &err);
    assert_non_null(v);
    assert_int_equal(v->n[0] + v->n[1], 0);
    assert_null(sio_wfvalues_get(v, SIO_WF_SECRET, "x"));
    sio_wfvalues_free(v);
    assert_true(sio_wfvalue_name_ok("users_url-2", 11));
    assert_false(sio_wfvalue_name_ok("a.b", 3));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(env_variables),
        cmocka_unit_test(a_file_of_lines_wins_over_env),
        cmocka_unit_test(a_folder_like_a_kubernetes_volume),
        cmocka_unit_test(errors_name_the_source),
        cmocka_unit_test(no_sources_no_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
