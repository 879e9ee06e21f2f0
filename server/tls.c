/*
 * tls: OpenSSL contexts for TLS listeners and the TLS transport.
 */
#include "server/tls.h"
#include "server/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>

#include "server/server_internal.h"

#define RECORD_MAX 16384             /* bytes of plaintext per SSL_write */
#define TICKET_PERIOD (12 * 3600)    /* seconds a ticket key encrypts */
#define EXPIRY_WARN (14 * 24 * 3600) /* warn about certs expiring sooner */
/* TLS 1.2 suites when `ciphers` is null: forward secret and AEAD only
 * (Mozilla's "intermediate" list); OpenSSL's own default adds CBC suites
 * (LUCKY13) and static RSA key exchange. */
#define DEFAULT_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

/* One SSL_CTX and what the app may ask about its certificate. */
struct cert_ctx {
    SSL_CTX *ctx;
    char *pem;                /* the leaf certificate, for the tls extension's server_cert */
    const char *const *names; /* SNI entries: the names it answers for */
    size_t nnames;
};

struct sl_tls_listener {
    const struct sl_tls_config *cfg;
    struct cert_ctx def; /* the listener's own cert */
    struct cert_ctx *sni;
    size_t nsni;
    unsigned char alpn[256]; /* wire format: length-prefixed names */
    size_t alpn_len;
};

struct sl_tls_conn {
    SSL *ssl;
    bool hs_done : 1;
    bool rd_wants_write : 1; /* a read is blocked until the socket is writable */
    bool wr_wants_read : 1;  /* a write is blocked until the socket is readable */
    bool eof : 1;            /* close_notify (or a clean TCP end) seen */
    bool failed : 1;         /* a fatal TLS error: no close_notify may follow */
    bool shut : 1;           /* close_notify sent */
    int8_t why;              /* a failed handshake's enum sl_metrics_tls_failure, or -1 */
};

/* Key material of one ticket period (see ticket_keys). */
struct ticket_key {
    uint64_t period;
    bool set;
    unsigned char name[16], aes[32], mac[32];
};

static struct {
    struct sl_tls_listener **ls;
    size_t n;
    unsigned char ticket_secret[32];
    bool have_secret;
    struct ticket_key keys[2]; /* by period parity: the current and previous one */
    EVP_CIPHER *ticket_aes;    /* fetched once: EVP_aes_256_cbc() fetches per init */
} T;

/* ---- errors ------------------------------------------------------------- */

/* The first reason OpenSSL queued (the root cause; later ones wrap it),
 * and clears the queue. */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        if (last == 0)
            last = e;
    if (last == 0)
        snprintf(buf, cap, "unknown error");
    else
        ERR_error_string_n(last, buf, cap);
    return buf;
}

static int ctx_error(const char *where, const char *key, const char *file)
{
    char why[256];
    sl_log(SL_LOG_ERROR, "%s.tls.%s: %s: %s", where, key, file ? file : "",
           ssl_reason(why, sizeof(why)));
    return -EINVAL;
}

/* ---- session tickets ------------------------------------------------------ */

/* Key material of one ticket period, derived from the secret made before
 * fork: every worker derives the same keys for the same period. */
static void derive(struct ticket_key *k, uint64_t period)
{
    unsigned char in[9], out[32];
    unsigned int len;
    for (int i = 0; i < 8; i++)
        in[i + 1] = (unsigned char)(period >> (8 * i));
    in[0] = 'n';
    HMAC(EVP_sha256(), T.ticket_secret, sizeof(T.ticket_secret), in, sizeof(in), out, &len);
    memcpy(k->name, out, 16);
    in[0] = 'a';
    HMAC(EVP_sha256(), T.ticket_secret, sizeof(T.ticket_secret), in, sizeof(in), k->aes, &len);
    in[0] = 'm';
    HMAC(EVP_sha256(), T.ticket_secret, sizeof(T.ticket_secret), in, sizeof(in), k->mac, &len);
    OPENSSL_cleanse(out, sizeof(out));
    k->period = period;
    k->set = true;
}

/* The keys of a period, derived once per process and period (three HMACs
 * were 2% of a full handshake's instructions): the current period's and the
 * previous one's, the two a ticket may be decrypted with. */
static const struct ticket_key *ticket_keys(uint64_t period)
{
    struct ticket_key *k = &T.keys[period & 1];
    if (!k->set || k->period != period)
        derive(k, period);
    return k;
}

static const EVP_CIPHER *ticket_cipher(void)
{
    if (!T.ticket_aes)
        T.ticket_aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    return T.ticket_aes;
}

static int set_mac(EVP_MAC_CTX *hctx, const unsigned char mac[32])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)mac, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * Encrypts new tickets with this period's key; decrypts with this
 * period's or the previous one's (2 = valid but renew it). A TLS 1.3
 * resumption always gets a fresh ticket (RFC 8446 C.4: clients should not
 * reuse one), which also answers the client's Finished at once: without
 * it, a client that has Nagle on (Python's default) holds its request
 * until the delayed ACK, 40 ms per resumed connection.
 */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
                     EVP_MAC_CTX *hctx, int enc)
{
    uint64_t period = (uint64_t)time(NULL) / TICKET_PERIOD;
    const EVP_CIPHER *aes = ticket_cipher();
    if (!aes)
        return -1;
    if (enc) {
        const struct ticket_key *k = ticket_keys(period);
        memcpy(key_name, k->name, 16);
        if (RAND_bytes(iv, 16) <= 0 || !EVP_EncryptInit_ex(ectx, aes, NULL, k->aes, iv) ||
            !set_mac(hctx, k->mac))
            return -1;
        return 1;
    }
    for (uint64_t age = 0; age < 2; age++) {
        const struct ticket_key *k = ticket_keys(period - age);
        if (memcmp(k->name, key_name, 16) != 0)
            continue;
        if (!EVP_DecryptInit_ex(ectx, aes, NULL, k->aes, iv) || !set_mac(hctx, k->mac))
            return -1;
        return age == 0 && SSL_version(s) != TLS1_3_VERSION ? 1 : 2;
    }
    return 0; /* unknown key: full handshake */
}

/* ---- SNI and ALPN ------------------------------------------------------------ */

static bool name_matches(const char *pattern, const char *name)
{
    if (strncmp(pattern, "*.", 2) != 0)
        return strcasecmp(pattern, name) == 0;
    const char *dot = strchr(name, '.'); /* the wildcard covers one label */
    return dot && dot != name && strcasecmp(pattern + 1, dot) == 0;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    struct sl_tls_listener *tl = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    (void)alert;
    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (int wild = 0; wild < 2; wild++) /* exact names before wildcards */
        for (size_t i = 0; i < tl->nsni; i++)
            for (size_t j = 0; j < tl->sni[i].nnames; j++) {
                const char *p = tl->sni[i].names[j];
                if ((p[0] == '*') == (wild == 1) && name_matches(p, name)) {
                    SSL_set_SSL_CTX(ssl, tl->sni[i].ctx);
                    return SSL_TLSEXT_ERR_OK;
                }
            }
    return SSL_TLSEXT_ERR_OK; /* the listener's own cert */
}

/* RFC 7301: no protocol in common is a fatal no_application_protocol. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    struct sl_tls_listener *tl = arg;
    unsigned char *sel;
    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, tl->alpn, (unsigned)tl->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- contexts ------------------------------------------------------------------ */

static char *leaf_pem(SSL_CTX *ctx)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    if (!x || !b || !PEM_write_bio_X509(b, x)) {
        BIO_free(b);
        return NULL;
    }
    long len = BIO_get_mem_data(b, &data);
    out = malloc((size_t)len + 1);
    if (out) {
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
    BIO_free(b);
    return out;
}

static void warn_expiry(SSL_CTX *ctx, const char *where, const char *file)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    time_t soon = time(NULL) + EXPIRY_WARN;
    if (x && X509_cmp_time(X509_get0_notAfter(x), &soon) < 0)
        sl_log(SL_LOG_WARNING, "%s: %s: certificate expires within 14 days", where, file);
}

/* Client certificates: CA list, verify mode and depth, CRLs. */
static int setup_verify(SSL_CTX *ctx, const struct sl_tls_config *t, const char *where)
{
    if (t->client_ca == NULL || t->verify_client == SL_VERIFY_OFF)
        return 0;
    if (!SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL))
        return ctx_error(where, "client_ca", t->client_ca);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
    if (names == NULL)
        return ctx_error(where, "client_ca", t->client_ca);
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (t->verify_client == SL_VERIFY_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    /* OpenSSL's depth counts the CAs between the leaf and the anchor. */
    SSL_CTX_set_verify_depth(ctx, (int)t->verify_depth);
    if (t->crl) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lu || X509_load_crl_file(lu, t->crl, X509_FILETYPE_PEM) <= 0)
            return ctx_error(where, "crl", t->crl);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    return 0;
}

/*
 * Sessions resume only where they were made: ticket keys are shared by
 * every listener (and worker), so without a context per listener a session
 * from a listener that asks for no client certificate would resume on one
 * that requires it, skipping the check. The context digests the listener
 * and its client-verification settings (SNI contexts of one listener share
 * it: same verification).
 */
static int set_session_context(SSL_CTX *ctx, const struct sl_tls_config *t, const char *where)
{
    char id[1024];
    unsigned char md[32];
    unsigned int len = 0;
    int n = snprintf(id, sizeof(id), "saltare\n%s\n%d\n%u\n%s\n%s", where, (int)t->verify_client,
                     t->verify_depth, t->client_ca ? t->client_ca : "", t->crl ? t->crl : "");
    if (n < 0 || !EVP_Digest(id, strlen(id), md, &len, EVP_sha256(), NULL))
        return -1;
    return SSL_CTX_set_session_id_context(ctx, md, len) == 1 ? 0 : -1;
}

static int setup_protocol(SSL_CTX *ctx, const struct sl_tls_config *t, const char *where)
{
    SSL_CTX_set_min_proto_version(ctx,
                                  t->min_version == SL_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* Every suite offered is strong: the client picks (ChaCha20 on CPUs
     * without AES instructions), as Mozilla's guidelines advise. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
#ifdef SSL_OP_ENABLE_KTLS
    /* Tried per connection after the handshake; no module: plain records.
     * A kTLS socket is written by OpenSSL's write(2) (see nosig_write). */
    if (t->ktls) {
        sl_transport_ignore_sigpipe();
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    }
#endif
    /* Released buffers: an idle connection holds no 16 KiB record buffers.
     * Partial and moving writes: the output queue retries from its own
     * copy, possibly with more bytes (never fewer). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (!SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers : DEFAULT_CIPHERS))
        return ctx_error(where, "ciphers", t->ciphers);
    if (t->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites))
        return ctx_error(where, "ciphersuites", t->ciphersuites);
    if (set_session_context(ctx, t, where) < 0)
        return ctx_error(where, "cert", t->cert);
    if (t->session_cache) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, t->session_cache);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (!t->session_tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, t->session_cache ? 1 : 0);
    } else {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        SSL_CTX_set_num_tickets(ctx, 1);
    }
    return 0;
}

/* One context for cert+key with the listener's settings. */
static int make_ctx(struct cert_ctx *cc, struct sl_tls_listener *tl, const char *cert,
                    const char *key, const char *where, const char *what)
{
    char certkey[64], keykey[64];
    snprintf(certkey, sizeof(certkey), "%scert", what);
    snprintf(keykey, sizeof(keykey), "%skey", what);
    cc->ctx = SSL_CTX_new(TLS_server_method());
    if (cc->ctx == NULL)
        return ctx_error(where, certkey, cert);
    if (SSL_CTX_use_certificate_chain_file(cc->ctx, cert) != 1)
        return ctx_error(where, certkey, cert);
    if (SSL_CTX_use_PrivateKey_file(cc->ctx, key, SSL_FILETYPE_PEM) != 1)
        return ctx_error(where, keykey, key);
    if (SSL_CTX_check_private_key(cc->ctx) != 1) {
        ERR_clear_error();
        sl_log(SL_LOG_ERROR, "%s.tls.%s: %s: does not match the certificate %s", where, keykey, key,
               cert);
        return -EINVAL;
    }
    char at[96];
    snprintf(at, sizeof(at), "%s.tls.%s", where, certkey);
    warn_expiry(cc->ctx, at, cert);
    if (setup_protocol(cc->ctx, tl->cfg, where) < 0 || setup_verify(cc->ctx, tl->cfg, where) < 0)
        return -EINVAL;
    if (tl->alpn_len)
        SSL_CTX_set_alpn_select_cb(cc->ctx, alpn_cb, tl);
    SSL_CTX_set_app_data(cc->ctx, cc);
    cc->pem = leaf_pem(cc->ctx);
    return 0;
}

/* Another certificate of another key type in the same context: OpenSSL
 * keeps one per type and picks by the client's signature algorithms. The
 * PEM the app sees stays the first certificate's. */
static int add_pair(struct cert_ctx *cc, const struct sl_tls_pair *p, const char *where, size_t i)
{
    char certkey[48], keykey[48], at[160];
    snprintf(certkey, sizeof(certkey), "extra_certs.%zu.cert", i);
    snprintf(keykey, sizeof(keykey), "extra_certs.%zu.key", i);
    if (SSL_CTX_use_certificate_chain_file(cc->ctx, p->cert) != 1)
        return ctx_error(where, certkey, p->cert);
    if (SSL_CTX_use_PrivateKey_file(cc->ctx, p->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(cc->ctx) != 1)
        return ctx_error(where, keykey, p->key);
    snprintf(at, sizeof(at), "%s.tls.%s", where, certkey);
    warn_expiry(cc->ctx, at, p->cert);
    return 0;
}

static void free_listener(struct sl_tls_listener *tl)
{
    if (!tl)
        return;
    SSL_CTX_free(tl->def.ctx);
    free(tl->def.pem);
    for (size_t i = 0; i < tl->nsni; i++) {
        SSL_CTX_free(tl->sni[i].ctx);
        free(tl->sni[i].pem);
    }
    free(tl->sni);
    free(tl);
}

static int build(struct sl_tls_listener *tl, const char *where)
{
    const struct sl_tls_config *t = tl->cfg;
    for (size_t i = 0; i < t->nalpn; i++) {
        size_t n = strlen(t->alpn[i]);
        if (n == 0 || n > 255 || tl->alpn_len + 1 + n > sizeof(tl->alpn))
            continue;
        tl->alpn[tl->alpn_len++] = (unsigned char)n;
        memcpy(tl->alpn + tl->alpn_len, t->alpn[i], n);
        tl->alpn_len += n;
    }
    int rc = make_ctx(&tl->def, tl, t->cert, t->key, where, "");
    for (size_t i = 0; rc == 0 && i < t->nextra_certs; i++)
        rc = add_pair(&tl->def, &t->extra_certs[i], where, i);
    tl->sni = calloc(t->nsni ? t->nsni : 1, sizeof(*tl->sni));
    if (!tl->sni)
        return -ENOMEM;
    for (size_t i = 0; i < t->nsni; i++) {
        char what[48];
        snprintf(what, sizeof(what), "sni.%zu.", i);
        tl->sni[i].names = t->sni[i].names;
        tl->sni[i].nnames = t->sni[i].nnames;
        tl->nsni = i + 1;
        if (make_ctx(&tl->sni[i], tl, t->sni[i].cert, t->sni[i].key, where, what) < 0)
            rc = -EINVAL;
    }
    if (rc == 0 && t->nsni) {
        SSL_CTX_set_tlsext_servername_callback(tl->def.ctx, servername_cb);
        SSL_CTX_set_tlsext_servername_arg(tl->def.ctx, tl);
    }
    return rc;
}

static struct sl_tls_listener *build_for(const struct sl_listener_config *l, size_t index)
{
    char where[64];
    struct sl_tls_listener *tl = calloc(1, sizeof(*tl));
    if (!tl)
        return NULL;
    if (!T.have_secret) {
        if (RAND_bytes(T.ticket_secret, sizeof(T.ticket_secret)) <= 0) {
            free(tl);
            return NULL;
        }
        T.have_secret = true;
    }
    tl->cfg = &l->tls;
    snprintf(where, sizeof(where), "listeners.%zu", index);
    if (build(tl, where) < 0) {
        free_listener(tl);
        return NULL;
    }
    return tl;
}

static int add(struct sl_tls_listener *tl)
{
    struct sl_tls_listener **ls = realloc(T.ls, (T.n + 1) * sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    T.ls = ls;
    T.ls[T.n++] = tl;
    return 0;
}

/* Says (as a warning) why `ktls: true` cannot take effect here: an
 * OpenSSL without kTLS, or a kernel whose `tls` module is not loaded
 * (it may still load on first use when module autoloading is allowed). */
static void ktls_report(const char *where)
{
#if defined(SSL_OP_ENABLE_KTLS) && !defined(OPENSSL_NO_KTLS)
    char ulp[256] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (f) {
        if (!fgets(ulp, sizeof(ulp), f))
            ulp[0] = '\0';
        fclose(f);
        ulp[strcspn(ulp, "\n")] = '\0';
    }
    bool loaded = false;
    for (char *p = ulp; (p = strstr(p, "tls")) != NULL; p += 3)
        if ((p == ulp || p[-1] == ' ') && (p[3] == ' ' || p[3] == '\0'))
            loaded = true;
    if (loaded)
        sl_log(SL_LOG_INFO, "%s: kernel TLS available (the `tls` module is loaded)", where);
    else
        sl_log(SL_LOG_WARNING,
               "%s: the kernel's `tls` module is not loaded (tcp_available_ulp: \"%s\"); "
               "connections use OpenSSL's own records",
               where, ulp);
#else
    sl_log(SL_LOG_WARNING, "%s: this OpenSSL has no kernel TLS support; ignored", where);
#endif
}

int sl_tls_init(const struct sl_config *cfg)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct sl_listener_config *l = &cfg->listeners[i];
        if (l->tls.cert == NULL)
            continue;
        struct sl_tls_listener *tl = build_for(l, i);
        if (tl == NULL) {
            rc = -EINVAL;
            continue;
        }
        if (add(tl) < 0)
            free_listener(tl);
        if (l->tls.ktls) {
            char where[64];
            snprintf(where, sizeof(where), "listeners.%zu.tls.ktls", i);
            ktls_report(where);
        }
    }
    if (rc < 0)
        sl_tls_fini();
    return rc;
}

struct sl_tls_listener *sl_tls_for(const struct sl_listener_config *l)
{
    for (size_t i = 0; i < T.n; i++)
        if (T.ls[i]->cfg == &l->tls)
            return T.ls[i];
    struct sl_tls_listener *tl = build_for(l, 0);
    if (tl && add(tl) < 0) {
        free_listener(tl);
        tl = NULL;
    }
    return tl;
}

void sl_tls_fini(void)
{
    for (size_t i = 0; i < T.n; i++)
        free_listener(T.ls[i]);
    free(T.ls);
    T.ls = NULL;
    T.n = 0;
    EVP_CIPHER_free(T.ticket_aes);
    T.ticket_aes = NULL;
}

/* ---- saltare -t ------------------------------------------------------------------ */

static int check_fail(SSL_CTX *ctx, int rc, char *err, size_t cap)
{
    ssl_reason(err, cap);
    SSL_CTX_free(ctx);
    return rc;
}

int sl_tls_check(int what, const char *file, const char *key, char *err, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return check_fail(ctx, -1, err, cap);
    switch (what) {
    case SL_TLS_CHECK_CERT_KEY:
        if (SSL_CTX_use_certificate_chain_file(ctx, file) != 1)
            return check_fail(ctx, -1, err, cap);
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
            return check_fail(ctx, -2, err, cap);
        warn_expiry(ctx, "tls", file);
        break;
    case SL_TLS_CHECK_CA:
        if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1)
            return check_fail(ctx, -1, err, cap);
        break;
    case SL_TLS_CHECK_CRL: {
        X509_LOOKUP *lu = X509_STORE_add_lookup(SSL_CTX_get_cert_store(ctx), X509_LOOKUP_file());
        if (!lu || X509_load_crl_file(lu, file, X509_FILETYPE_PEM) <= 0)
            return check_fail(ctx, -1, err, cap);
        break;
    }
    case SL_TLS_CHECK_CIPHERS:
        if (SSL_CTX_set_cipher_list(ctx, file) != 1)
            return check_fail(ctx, -1, err, cap);
        break;
    case SL_TLS_CHECK_CIPHERSUITES:
        if (SSL_CTX_set_ciphersuites(ctx, file) != 1)
            return check_fail(ctx, -1, err, cap);
        break;
    case SL_TLS_CHECK_KTLS:
        ktls_report(file);
        break;
    default:
        break;
    }
    SSL_CTX_free(ctx);
    return 0;
}

/* ---- the transport ------------------------------------------------------------- */

/* A failed handshake is said once per connection, with the peer. */
static void log_failure(int fd, const char *what)
{
    union sl__addr peer;
    socklen_t len = sizeof(peer);
    char ip[INET6_ADDRSTRLEN], who[INET6_ADDRSTRLEN + 16] = "a client already gone", why[256];
    if (getpeername(fd, &peer.sa, &len) == 0) {
        if (peer.sa.sa_family == AF_INET) {
            inet_ntop(AF_INET, &peer.in.sin_addr, ip, sizeof(ip));
            snprintf(who, sizeof(who), "%s:%u", ip, ntohs(peer.in.sin_port));
        } else if (peer.sa.sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &peer.in6.sin6_addr, ip, sizeof(ip));
            snprintf(who, sizeof(who), "[%s]:%u", ip, ntohs(peer.in6.sin6_port));
        } else {
            snprintf(who, sizeof(who), "unix");
        }
    }
    sl_log(SL_LOG_INFO, "tls %s %s: %s", what, who, ssl_reason(why, sizeof(why)));
}

/* OpenSSL's socket BIO writes with write(2): a peer gone raises SIGPIPE,
 * which the transport contract forbids. Same BIO, writes by send(2) with
 * MSG_NOSIGNAL. */
static int nosig_write(BIO *b, const char *buf, int len)
{
    int fd = (int)BIO_get_fd(b, NULL);
    ssize_t n;
#ifdef SSL_OP_ENABLE_KTLS
    /* kTLS sends non-data records (alerts, tickets) with a control message
     * only OpenSSL's own write knows; SIGPIPE is ignored for it (ktls). */
    if (BIO_get_ktls_send(b))
        return BIO_meth_get_write(BIO_s_socket())(b, buf, len);
#endif
    BIO_clear_retry_flags(b);
    do
        n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)n;
}

static BIO_METHOD *nosig_method(void)
{
    static BIO_METHOD *m;
    if (m)
        return m;
    const BIO_METHOD *sock = BIO_s_socket();
    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                     "saltare socket");
    if (!m)
        return NULL;
    BIO_meth_set_write(m, nosig_write);
    BIO_meth_set_read(m, BIO_meth_get_read(sock));
    BIO_meth_set_puts(m, BIO_meth_get_puts(sock));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock));
    BIO_meth_set_create(m, BIO_meth_get_create(sock));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock));
    return m;
}

static void *tls_open(int fd, void *arg)
{
    struct sl_tls_listener *tl = arg;
    struct sl_tls_conn *t = calloc(1, sizeof(*t));
    BIO_METHOD *m = nosig_method();
    BIO *bio = m ? BIO_new(m) : NULL;
    if (!t || !bio) {
        BIO_free(bio);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    t->ssl = SSL_new(tl->def.ctx);
    if (!t->ssl) {
        BIO_free(bio);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(t->ssl, bio, bio); /* the SSL owns it now */
    t->why = -1;
    SSL_set_accept_state(t->ssl);
    return t;
}

/* A failed handshake's reason for the metrics, from SSL_get_error's
 * verdict and the first error OpenSSL queued (still queued: log_failure
 * reads it next). */
static int8_t failure_class(int ssl_err)
{
    if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)
        return SL_METRICS_TLS_CLOSED; /* EOF or a reset */
    unsigned long e = ERR_peek_error();
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return SL_METRICS_TLS_ERROR;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return SL_METRICS_TLS_CLOSED;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
        return SL_METRICS_TLS_NOT_TLS;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_INAPPROPRIATE_FALLBACK:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_APPLICATION_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
    case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        return SL_METRICS_TLS_PROTOCOL;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return SL_METRICS_TLS_CLIENT_CERT;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
        return SL_METRICS_TLS_SERVER_CERT;
    default:
        return SL_METRICS_TLS_ERROR;
    }
}

/* Maps an SSL error to the transport's convention (and remembers what
 * the next epoll edge must be). */
static ssize_t fail_or_wait(int fd, struct sl_tls_conn *t, int rc, bool reading)
{
    int err = SSL_get_error(t->ssl, rc);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        if (!reading)
            t->wr_wants_read = true;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        if (reading)
            t->rd_wants_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        t->eof = true;
        if (!t->hs_done) /* EOF (no close_notify: IGNORE_UNEXPECTED_EOF) mid-handshake */
            t->why = SL_METRICS_TLS_CLOSED;
        return 0;
    default:
        t->failed = true;
        if (!t->hs_done) {
            t->why = failure_class(err);
            log_failure(fd, "handshake");
        } else
            ERR_clear_error();
        return err == SSL_ERROR_SYSCALL && errno ? -errno : -ECONNRESET;
    }
}

static ssize_t handshake(int fd, struct sl_tls_conn *t)
{
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->hs_done = true;
#ifdef SSL_OP_ENABLE_KTLS
        if ((SSL_get_options(t->ssl) & SSL_OP_ENABLE_KTLS) && sl_log_enabled(SL_LOG_DEBUG))
            sl_log(SL_LOG_DEBUG, "tls ktls fd %d: send %s, receive %s", fd,
                   BIO_get_ktls_send(SSL_get_wbio(t->ssl)) ? "kernel" : "openssl",
                   BIO_get_ktls_recv(SSL_get_rbio(t->ssl)) ? "kernel" : "openssl");
#endif
        return 1;
    }
    ssize_t r = fail_or_wait(fd, t, rc, true);
    return r == 0 ? -ECONNRESET : r;
}

/* Fills buf as far as the records available allow, so that a short count
 * means the socket is drained (the edge-triggered contract). */
static ssize_t tls_read(int fd, void *ctx, void *buf, size_t len)
{
    struct sl_tls_conn *t = ctx;
    size_t total = 0;
    ssize_t last = -EAGAIN;
    if (t->failed)
        return -ECONNRESET;
    if (!t->hs_done && (last = handshake(fd, t)) <= 0)
        return last;
    while (total < len && !t->eof) {
        size_t want = len - total < INT32_MAX ? len - total : INT32_MAX;
        int n = SSL_read(t->ssl, (char *)buf + total, (int)want);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        last = fail_or_wait(fd, t, n, true);
        break;
    }
    if (total > 0)
        return (ssize_t)total;
    return t->eof ? 0 : last;
}

/* The first `len` bytes of iov from byte `skip`, contiguous: a pointer into
 * the iov when they are, else copied into scratch. */
static const void *gather(const struct iovec *iov, int iovcnt, size_t skip, size_t len,
                          char *scratch)
{
    int i = 0;
    while (i < iovcnt && skip >= iov[i].iov_len)
        skip -= iov[i++].iov_len;
    if (iov[i].iov_len - skip >= len)
        return (const char *)iov[i].iov_base + skip;
    size_t o = 0;
    for (; i < iovcnt && o < len; i++, skip = 0) {
        size_t n = iov[i].iov_len - skip;
        if (n > len - o)
            n = len - o;
        memcpy(scratch + o, (const char *)iov[i].iov_base + skip, n);
        o += n;
    }
    return scratch;
}

/*
 * Writes records of up to 16 KiB until everything is taken or the socket
 * is full. A record cut short stays pending inside OpenSSL; the caller
 * offers the same bytes again (and maybe more) after EPOLLOUT, as the
 * output queue does.
 */
static ssize_t tls_writev(int fd, void *ctx, const struct iovec *iov, int iovcnt)
{
    static char scratch[RECORD_MAX]; /* one worker per process and thread */
    struct sl_tls_conn *t = ctx;
    size_t total = 0, taken = 0;
    if (t->failed)
        return -EPIPE;
    if (!t->hs_done) {
        ssize_t rc = handshake(fd, t);
        if (rc <= 0)
            return rc;
    }
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    while (taken < total) {
        size_t len = total - taken < RECORD_MAX ? total - taken : RECORD_MAX;
        const void *p = gather(iov, iovcnt, taken, len, scratch);
        int n = SSL_write(t->ssl, p, (int)len);
        if (n > 0) {
            taken += (size_t)n;
            continue;
        }
        ssize_t rc = fail_or_wait(fd, t, n, false);
        if (taken)
            break;
        return rc == 0 ? -EPIPE : rc;
    }
    return (ssize_t)taken;
}

#ifdef SSL_OP_ENABLE_KTLS
/*
 * With kTLS sending (tls.ktls and the kernel's tls module), the kernel
 * frames the records: the file goes from the page cache to the socket
 * without a copy through user space. Otherwise -EOPNOTSUPP, and the caller
 * reads the file and writes through tls_writev.
 */
static ssize_t tls_sendfile(int fd, void *ctx, int file_fd, off_t *off, size_t len)
{
    struct sl_tls_conn *t = ctx;
    if (t->failed)
        return -EPIPE;
    if (!t->hs_done || !BIO_get_ktls_send(SSL_get_wbio(t->ssl)))
        return -EOPNOTSUPP;
    ossl_ssize_t n = SSL_sendfile(t->ssl, file_fd, *off, len, 0);
    if (n > 0) {
        *off += (off_t)n;
        return (ssize_t)n;
    }
    if (n == 0)
        return 0; /* end of the file */
    ssize_t rc = fail_or_wait(fd, t, (int)n, false);
    return rc == 0 ? -EPIPE : rc;
}
#endif

static void send_close_notify(struct sl_tls_conn *t)
{
    if (t->shut || t->failed || !t->hs_done)
        return;
    t->shut = true;
    if (SSL_shutdown(t->ssl) < 0)
        ERR_clear_error();
}

static int tls_shutdown(int fd, void *ctx)
{
    send_close_notify(ctx);
    return shutdown(fd, SHUT_WR) == 0 ? 0 : -errno;
}

static void tls_close(int fd, void *ctx)
{
    struct sl_tls_conn *t = ctx;
    if (t) {
        send_close_notify(t);
        SSL_free(t->ssl);
        free(t);
    }
    close(fd);
}

static bool tls_read_wants_write(const void *ctx)
{
    const struct sl_tls_conn *t = ctx;
    return t->rd_wants_write;
}

int sl_tls_failure(const void *ctx)
{
    const struct sl_tls_conn *t = ctx;
    return t->why;
}

bool sl_tls_handshake_done(const void *ctx)
{
    const struct sl_tls_conn *t = ctx;
    return t->hs_done;
}

/* A read that waited for writability becomes possible on EPOLLOUT, and a
 * write that waited for readability on EPOLLIN. */
static uint32_t tls_events(void *ctx, uint32_t ev)
{
    struct sl_tls_conn *t = ctx;
    if (t->rd_wants_write && (ev & EPOLLOUT)) {
        t->rd_wants_write = false;
        ev |= EPOLLIN;
    }
    if (t->wr_wants_read && (ev & EPOLLIN)) {
        t->wr_wants_read = false;
        ev |= EPOLLOUT;
    }
    return ev;
}

const struct sl_transport sl_transport_tls = {
    .open = tls_open,
    .events = tls_events,
    .read_wants_write = tls_read_wants_write,
    .read = tls_read,
    .writev = tls_writev,
#ifdef SSL_OP_ENABLE_KTLS
    .sendfile = tls_sendfile,
#endif
    .shutdown = tls_shutdown,
    .close = tls_close,
};

/* ---- the ASGI tls extension's facts ------------------------------------------------ */

const struct sl_tls_conn *sl_req_tls(const struct sl_req *r)
{
    if (!r->c || r->c->tp != &sl_transport_tls)
        return NULL;
    return r->c->tp_ctx;
}

int sl_tls_version(const struct sl_tls_conn *t)
{
    return SSL_version(t->ssl);
}

int sl_tls_cipher(const struct sl_tls_conn *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    return c ? SSL_CIPHER_get_protocol_id(c) : 0;
}

const char *sl_tls_server_pem(const struct sl_tls_conn *t)
{
    const struct cert_ctx *cc = SSL_CTX_get_app_data(SSL_get_SSL_CTX(t->ssl));
    return cc ? cc->pem : NULL;
}

static int emit_pem(X509 *x, int (*fn)(void *, const char *, size_t), void *arg)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    int rc = -ENOMEM;
    if (b && PEM_write_bio_X509(b, x)) {
        long len = BIO_get_mem_data(b, &data);
        rc = fn(arg, data, (size_t)len);
    }
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

/* The handle is the session itself (SSL objects are reference counted):
 * no copy of the chain is made for requests that never look at it. */
struct sl_tls_peer *sl_tls_peer_get(const struct sl_tls_conn *t)
{
    if (!SSL_get0_peer_certificate(t->ssl) || SSL_up_ref(t->ssl) != 1)
        return NULL;
    return (struct sl_tls_peer *)t->ssl;
}

void sl_tls_peer_free(struct sl_tls_peer *p)
{
    SSL_free((SSL *)p); /* drops one reference; NULL is a no-op */
}

/* Calls fn per certificate, leaf first; on the server side the chain
 * OpenSSL keeps leaves the leaf out (kept defensively if it is there). */
static int each_cert(SSL *ssl, int (*fn)(void *, const char *, size_t), void *arg, bool encode)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    if (!leaf)
        return 0;
    int rc, count = 1;
    if (encode && (rc = emit_pem(leaf, fn, arg)) < 0)
        return rc;
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_cmp(x, leaf) == 0)
            continue;
        if (encode && (rc = emit_pem(x, fn, arg)) < 0)
            return rc;
        count++;
    }
    return count;
}

int sl_tls_peer_count(const struct sl_tls_peer *p)
{
    return p ? each_cert((SSL *)p, NULL, NULL, false) : 0;
}

int sl_tls_peer_chain(const struct sl_tls_peer *p, int (*fn)(void *, const char *, size_t),
                      void *arg)
{
    return p ? each_cert((SSL *)p, fn, arg, true) : 0;
}

bool sl_tls_client_name(const struct sl_tls_conn *t, char *buf, size_t cap)
{
    X509 *leaf = SSL_get0_peer_certificate(t->ssl);
    BIO *b;
    char *data;
    if (!leaf || cap == 0 || !(b = BIO_new(BIO_s_mem())))
        return false;
    X509_NAME_print_ex(b, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253);
    long len = BIO_get_mem_data(b, &data);
    size_t n = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    BIO_free(b);
    return true;
}

const char *sl_tls_client_error(const struct sl_tls_conn *t)
{
    long v;
    if (!SSL_get0_peer_certificate(t->ssl) || (v = SSL_get_verify_result(t->ssl)) == X509_V_OK)
        return NULL;
    return X509_verify_cert_error_string(v);
}
