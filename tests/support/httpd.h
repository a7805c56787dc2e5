/*
 * httpd.h - a tiny HTTP/1.1 server for tests, on its own thread and loop.
 *
 * Answers every request with 200 and a JSON body {"path": "<path>", "n": <k>}
 * after delay_ms, closing the connection.  Counts requests and the largest
 * number open at once, so tests can assert concurrency without timing, and
 * keeps each request's head, so tests can assert what was sent.
 */
#ifndef SIO_TEST_HTTPD_H
#define SIO_TEST_HTTPD_H

typedef struct test_httpd test_httpd;

/* Starts on 127.0.0.1 on a free port.  Returns NULL on failure.  The caller
 * owns the result and stops it with test_httpd_stop. */
test_httpd *test_httpd_start(unsigned delay_ms);
int test_httpd_port(const test_httpd *h);
int test_httpd_requests(test_httpd *h);
int test_httpd_max_open(test_httpd *h);

/* The i-th request received (0-based): its head (request line and headers,
 * up to the blank line) exactly as it arrived, in a string the caller
 * frees; NULL when there is no such request. */
char *test_httpd_request(test_httpd *h, int i);
void test_httpd_stop(test_httpd *h);

#endif
