/* config_int.h - value parsers shared by config.c and config_parse.c. */
#ifndef SIO_CONFIG_INT_H
#define SIO_CONFIG_INT_H

#include <stdint.h>

#include "config.h"

#define HOUR_MS (3600LL * 1000)

typedef struct redis_addr {
    char *host, *user, *pass;
    int port;
} redis_addr;

/* see config_parse.c */
int sio_cfg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, sio_err *err);
/* see config_parse.c */
int sio_cfg_check_topic(const char *s, sio_err *err);
/* see config_parse.c */
int sio_cfg_check_brokers(const char *s, sio_err *err);
/* see config_parse.c */
int sio_cfg_check_assignors(const char *s, sio_err *err);
/* see config_parse.c */
void sio_cfg_free_strv(char **v);
/* see config_parse.c */
char **sio_cfg_parse_hosts(const char *s, sio_err *err);
/* see config_parse.c */
int sio_cfg_parse_redis(const char *s, redis_addr *r, sio_err *err);
/* see config_parse.c */
void sio_cfg_redis_addr_free(redis_addr *r);
/* Trims blanks at both ends, in place; returns the new start. */
char *sio_cfg_trim(char *s);
/* Splits one line of the `KEY=value` format in place: 0 for a blank or
 * `#` comment line, 1 with *key and *val (trimmed; one pair of matching
 * surrounding quotes removed from the value), -1 when there is no '='
 * (*key is then the trimmed line). */
int sio_cfg_split_line(char *line, char **key, char **val);

#endif
