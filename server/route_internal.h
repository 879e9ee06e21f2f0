/*
 * route internals: the hook between conn.c and the route actions
 * (server/route_act.c).
 */
#ifndef SL_SERVER_ROUTE_INTERNAL_H
#define SL_SERVER_ROUTE_INTERNAL_H

#include "server/route.h"
#include "server/server_internal.h"

/* The client of `r` as far as we trust: the address a trusted proxy's
 * headers named, else the connection's peer (the PROXY header's source
 * when there was one). NULL or AF_UNIX: a Unix-socket peer. */
const struct sockaddr *sl__req_client(const struct sl_req *r);

/* Matches the head being started as `r` (its proxy headers taken) against
 * its listener's routes. hit->route is NULL when no route matched (or the
 * table is empty). */
void sl__route_lookup(struct sl_req *r, const struct sl_h1_request *h, struct sl_route_hit *hit);

/* The body ceiling for the request: the route's, else the listener's. */
uint64_t sl__route_max_body(const struct sl_conn *c, const struct sl_route_hit *hit);

/* The body timeout (ms) for `r`: its route's, else the listener's. */
uint32_t sl__route_body_ms(const struct sl_req *r);

/* Refuses the request with `status` and Retry-After: `retry_after_s`
 * (429 from limits.rate, 503 from limits.concurrency). */
void sl__route_refuse(struct sl_req *r, int status, uint32_t retry_after_s);

/* ---- limits.c: limits counted per client address ---------------------------- */

/* Counts c against limits.max_connections_per_ip once its address is known
 * (at accept, or after its PROXY header). False: over the cap, close it. */
bool sl__limits_conn_open(struct sl_conn *c);
/* Gives back what sl__limits_conn_open counted (on close). */
void sl__limits_conn_close(struct sl_conn *c);
/* limits.rate and limits.concurrency for a request whose route is known.
 * True when it was refused (answered 429 or 503, the req released). */
bool sl__limits_request(struct sl_req *r, const struct sl_h1_request *h);
/* The request no longer counts as in flight. */
void sl__limits_request_end(struct sl_req *r);
/* limits.max_connection_lifetime has passed for c. */
bool sl__limits_expired(const struct sl_conn *c);
/* How long c may idle: keep_alive_ms (0 = forever), bounded by what is
 * left of its lifetime (at least 1 ms). */
uint32_t sl__limits_idle_ms(const struct sl_conn *c, uint32_t keep_alive_ms);

/* Answers `status` with a short text body (405 adds Allow: GET, HEAD). */
void sl__route_status(struct sl_req *r, int status);

/* route_files.c: the `files` action. Returns false when the request is to
 * go to the app (a missing file with fallback: app). */
bool sl__route_files(struct sl_req *r, const struct sl_h1_request *h,
                     const struct sl_route_hit *hit);
/* Sends more of a file body when the socket takes it (from after_write and
 * the connection's step); ends the response after the last byte. */
void sl__route_file_pump(struct sl_req *r);
/* Closes the worker's cached files root directories (worker teardown). */
void sl__route_files_release(struct sl_worker *w);
/* Closes the body's file, if any (the exchange is over or broken). */
void sl__route_file_close(struct sl_req *r);

/* The write timeout (ms) for c's current response: its route's, else the
 * listener's. */
uint32_t sl__route_write_ms(const struct sl_conn *c);

/*
 * Runs the route's action when the server answers it (everything but
 * `app`): the response is made and the req released, as a synchronous app
 * would. Returns true then; false when the app is to be called.
 */
bool sl__route_answer(struct sl_req *r, const struct sl_h1_request *h,
                      const struct sl_route_hit *hit);

#endif
