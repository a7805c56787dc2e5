/*
 * service_jobs.c - the service's list of every command it holds (consumer
 * thread only), below the consumer loop (service.c) and exactly once
 * (service_txn.c), which both drop commands from it.
 */
#include "service_int.h"

void sio_service_job_unlink(sio_service *s, sio_command *j) {
    if (j->prev) j->prev->next = j->next;
    else s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
}

void sio_service_drop(sio_service *s, sio_command *c) {
    s->inflight--;
    sio_service_job_unlink(s, c);
    sio_command_free(c);
}

void sio_service_free_jobs(sio_service *s) {
    while (s->jobs) {
        sio_command *c = s->jobs;
        sio_service_job_unlink(s, c);
        sio_command_free(c);
    }
}
