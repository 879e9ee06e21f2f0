/*
 * tls: TLS listeners (OpenSSL 3) behind the transport seam.
 *
 * One SSL_CTX per TLS listener (plus one per `sni` entry), built in the
 * master before workers fork, so every worker holds the same session-ticket
 * secret and a ticket issued by one worker resumes on any other. Connections
 * get the sl_transport_tls ops: the handshake runs inside the first reads
 * (non-blocking, under the connection's timeouts.handshake), SSL_read/SSL_write
 * retries are driven by the epoll edges, and an idle connection keeps no
 * OpenSSL record buffers (SSL_MODE_RELEASE_BUFFERS).
 */
#ifndef SL_SERVER_TLS_H
#define SL_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "server/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_req;
struct sl_tls_listener; /* one listener's contexts */
struct sl_tls_conn;     /* one connection's session (a transport ctx) */

/* TLS connections: `open` takes the listener (sl_tls_for) as its arg. */
extern const struct sl_transport sl_transport_tls;

/*
 * Builds the contexts of every listener of cfg whose tls.cert is set:
 * loads certs and keys (and checks they match), CAs, CRLs. Errors are
 * logged as "listeners.N.tls.KEY: FILE: reason". Call once, before fork.
 * Returns 0 or -EINVAL.
 */
int sl_tls_init(const struct sl_config *cfg);

/* The check behind `saltare -t` (sl_cfg_input.check_tls): `what` is an
 * enum sl_tls_check. Loads the material as serving would; a certificate
 * that expires within 14 days is logged as a warning (not an error). */
int sl_tls_check(int what, const char *file, const char *key, char *err, size_t errcap);

/* The contexts for listener `l` (built by sl_tls_init, else built now). */
struct sl_tls_listener *sl_tls_for(const struct sl_listener_config *l);

/* True once the handshake of a connection's session (its transport ctx)
 * has completed. */
bool sl_tls_handshake_done(const void *ctx);
/* Why the handshake of this connection failed (enum sl_metrics_tls_failure),
 * or -1 when it did not fail (yet). */
int sl_tls_failure(const void *ctx);

/* Frees every context. */
void sl_tls_fini(void);

/* ---- what the app sees (ASGI tls extension) ---------------------------- */

/* The TLS session of the request's connection; NULL for plain ones and
 * once the connection is gone. Borrowed: valid during on_request. */
const struct sl_tls_conn *sl_req_tls(const struct sl_req *r);

/* 0x0303 (TLS 1.2), 0x0304 (TLS 1.3). */
int sl_tls_version(const struct sl_tls_conn *t);
/* The IANA cipher suite number, e.g. 0x1301. */
int sl_tls_cipher(const struct sl_tls_conn *t);
/* PEM of the certificate the server presented (borrowed, lives with the
 * listener), or NULL. */
const char *sl_tls_server_pem(const struct sl_tls_conn *t);

/*
 * The client's certificates, held past the connection so that the PEM
 * encoding can wait until the app asks for it (the ASGI extension's
 * client_cert_chain is lazy). A handle costs one reference count: it
 * shares the session of the connection. NULL when the client sent no
 * certificate. The caller owns the handle (sl_tls_peer_free).
 */
struct sl_tls_peer;
struct sl_tls_peer *sl_tls_peer_get(const struct sl_tls_conn *t);
/* The number of certificates in the chain, leaf included (no encoding). */
int sl_tls_peer_count(const struct sl_tls_peer *p);
/*
 * The chain as PEM, leaf first: calls fn(arg, pem, len) per certificate
 * (fn returns 0, or < 0 to stop). Returns the count, or -ENOMEM, or fn's
 * error.
 */
int sl_tls_peer_chain(const struct sl_tls_peer *p,
                      int (*fn)(void *arg, const char *pem, size_t len), void *arg);
/* Releases the handle; NULL is a no-op. */
void sl_tls_peer_free(struct sl_tls_peer *p);
/* RFC 4514 subject of the client certificate into buf; false if none. */
bool sl_tls_client_name(const struct sl_tls_conn *t, char *buf, size_t cap);
/* NULL when the client certificate verified (or none was sent), else why not. */
const char *sl_tls_client_error(const struct sl_tls_conn *t);

#ifdef __cplusplus
}
#endif

#endif
