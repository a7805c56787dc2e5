/*
 * httpd.h - a tiny HTTP/1.1 server for tests, on its own thread and loop.
 *
 * Answers every request with 200 and a JSON body {"path": "<path>", "n": <k>}
 * (k = its place among the answered requests), closing the connection.  It
 * records what it received and counts requests and the largest number open
 * at once, so tests can assert concurrency and wire contents without timing.
 *
 * The gate: after test_httpd_hold, requests are held - received, recorded,
 * never answered - until the test releases them.  A test that needs work in
 * flight holds it there, waits until the server holds as many requests as
 * it wants (test_httpd_wait), does what it needs (kill, stop, inject a
 * fault), then releases them.  Nothing depends on how fast anything runs.
 *
 * The same controls are served over HTTP under /_gate/ (for the shell
 * tests, through tests/support/httpd_main.c); these requests are never held,
 * counted or recorded:
 *   /_gate/hold              hold every request from now on
 *   /_gate/release?n=K       answer K requests: held ones first (oldest
 *                            first), then the next ones as they arrive
 *   /_gate/open              answer every held request and all later ones
 *   /_gate/stats             {"received":R,"held":H,"answered":A,"max_open":M}
 *   /_gate/wait?held=N       answers (with the stats) once N requests are
 *   /_gate/wait?received=N   held / were received / were answered; waits
 *   /_gate/wait?answered=N   as long as the client does
 */
#ifndef SIO_TEST_HTTPD_H
#define SIO_TEST_HTTPD_H

typedef struct test_httpd test_httpd;

/* Starts on 127.0.0.1 on a free port, the gate open; requests are answered
 * delay_ms after they arrive (or are released).  Returns NULL on failure.
 * The caller owns the result and stops it with test_httpd_stop. */
test_httpd *test_httpd_start(unsigned delay_ms);
int test_httpd_port(const test_httpd *h);

/* Requests answered so far. */
int test_httpd_requests(test_httpd *h);
/* The most requests open (received, not yet answered) at once. */
int test_httpd_max_open(test_httpd *h);
/* Requests received so far (answered, held or waiting for their delay). */
int test_httpd_received(test_httpd *h);
/* Requests held at the gate now. */
int test_httpd_held(test_httpd *h);

/* Closes the gate: requests from now on are held until released. */
void test_httpd_hold(test_httpd *h);
/* Lets n more requests through (held ones first, oldest first). */
void test_httpd_release(test_httpd *h, int n);
/* Opens the gate: every held request and all later ones are answered. */
void test_httpd_open(test_httpd *h);

typedef enum test_httpd_count { TEST_HTTPD_HELD, TEST_HTTPD_RECEIVED, TEST_HTTPD_ANSWERED } test_httpd_count;

/* Waits until the count reaches n or timeout_ms passes (a bound for a
 * broken test, not a speed assumption: make it generous).  Returns the
 * count reached. */
int test_httpd_wait(test_httpd *h, test_httpd_count what, int n, unsigned timeout_ms);

/* The i-th request received (0-based): its head (request line and headers,
 * up to the blank line) exactly as it arrived, in a string the caller
 * frees; NULL when there is no such request. */
char *test_httpd_request(test_httpd *h, int i);

void test_httpd_stop(test_httpd *h);

#endif
