/* telemetry.c - see telemetry.h. */
#include "telemetry.h"

#include <stdlib.h>

#include "health.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "trace.h"

struct sio_telemetry {
    sio_ops *ops;
    int tracing;
};

sio_telemetry *sio_telemetry_start(const sio_config *cfg, sio_err *err) {
    sio_telemetry *t = calloc(1, sizeof *t);
    if (t == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "telemetry: out of memory");
        return NULL;
    }
    sio_health_set_stall_ms(cfg->ops_stall_ms);
    sio_metrics_set_workers(cfg->worker_count);
    if (cfg->ops_host && (t->ops = sio_ops_start(cfg->ops_host, cfg->ops_port, err)) == NULL) {
        free(t);
        return NULL;
    }
    sio_trace_cfg tc = {.url = cfg->otlp_traces_url, .service_name = cfg->otel_service_name,
                        .sampler = {cfg->sampler, cfg->sampler_ratio}};
    if (sio_trace_start(&tc, err) != 0) {
        sio_telemetry_stop(t);
        return NULL;
    }
    t->tracing = cfg->otlp_traces_url != NULL;
    sio_log_json(SIO_LOG_INFO, "telemetry",
                 json_pack("{s:o,s:i,s:o}", "ops_addr", sio_json_cstr(t->ops ? cfg->ops_host : NULL),
                           "ops_port", sio_ops_port(t->ops), "traces_url",
                           sio_json_cstr(t->tracing ? cfg->otlp_traces_url : NULL)));
    return t;
}

int sio_telemetry_ops_port(const sio_telemetry *t) {
    return t ? sio_ops_port(t->ops) : 0;
}

void sio_telemetry_stop(sio_telemetry *t) {
    if (t == NULL) return;
    sio_ops_stop(t->ops);
    sio_trace_stop();
    free(t);
}
