/*
 * scope: the ASGI HTTP connection scope, built in C.
 *
 * Every scope starts as a copy of one template dict holding the constant
 * entries (CPython copies such a dict with one memcpy of its key table); the
 * per-request values then replace placeholders, so no key is ever hashed.
 * Strings that repeat across requests (methods, common header names, the
 * last path, the peer host, the server address) are shared, not rebuilt.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "python/bridge_internal.h"
#include "server/tls.h"

/* Request methods shared as interned strings. */
static const char *const method_names[] = {"GET",     "POST",  "PUT",   "DELETE", "HEAD",
                                           "OPTIONS", "PATCH", "TRACE", "CONNECT"};
static PyObject *methods[sizeof(method_names) / sizeof(method_names[0])];

/* Request header names shared as lowercase bytes. */
static const char *const header_names[] = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "origin",
    "referer",
    "authorization",
    "cache-control",
    "pragma",
    "upgrade",
    "transfer-encoding",
    "expect",
    "if-none-match",
    "if-modified-since",
    "range",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-request-id",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "sec-websocket-key",
    "sec-websocket-version",
    "te",
    "dnt",
};
#define NHEADER_NAMES (sizeof(header_names) / sizeof(header_names[0]))
static PyObject *header_bytes[NHEADER_NAMES];
static size_t header_lens[NHEADER_NAMES];

/* One-entry caches: [raw_path, path] of the last request, the last peer
 * host, the last server address. */
#define PATH_CACHE_MAX 256 /* bytes; longer paths are not cached */
static PyObject *last_raw_path, *last_path;
static struct sockaddr_storage last_peer;
static PyObject *last_peer_host;
static struct sockaddr_storage last_local;
static const char *last_unix_path;
static PyObject *last_server;
/* The server certificate of the last TLS request, and its C string. */
static const char *last_server_pem;
static PyObject *last_server_cert;

static int fill_tables(void)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if ((methods[i] = PyUnicode_InternFromString(method_names[i])) == NULL)
            return -1;
    for (size_t i = 0; i < NHEADER_NAMES; i++) {
        header_lens[i] = strlen(header_names[i]);
        header_bytes[i] = PyBytes_FromStringAndSize(header_names[i], (Py_ssize_t)header_lens[i]);
        if (header_bytes[i] == NULL)
            return -1;
    }
    return 0;
}

/* {"version": "3.0", "spec_version": ...} (new reference). */
PyObject *sl__scope_asgi(const char *spec_version)
{
    return Py_BuildValue("{OsOs}", sl__py.s.version, "3.0", sl__py.s.spec_version, spec_version);
}

int sl__scope_init(void)
{
    struct sl__strs *s = &sl__py.s;
    PyObject *t = NULL, *asgi = NULL, *ext = NULL;

    if (fill_tables() < 0)
        return -1;
    /* 2.4: send() after a disconnect raises an OSError (ClientDisconnected). */
    asgi = sl__scope_asgi("2.4");
    ext = Py_BuildValue("{s{}s{}}", "http.response.trailers", "http.response.pathsend");
    t = PyDict_New();
    if (asgi == NULL || ext == NULL || t == NULL)
        goto fail;
    PyObject *kv[][2] = {
        {s->type, s->http},         {s->asgi, asgi},
        {s->http_version, Py_None}, {s->method, Py_None},
        {s->scheme, s->http},       {s->path, Py_None},
        {s->raw_path, Py_None},     {s->query_string, Py_None},
        {s->root_path, s->empty},   {s->headers, Py_None},
        {s->client, Py_None},       {s->server, Py_None},
        {s->extensions, ext},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (PyDict_SetItem(t, kv[i][0], kv[i][1]) < 0)
            goto fail;
    sl__py.scope_template = t;
    Py_DECREF(asgi);
    Py_DECREF(ext);
    return 0;
fail:
    Py_XDECREF(t);
    Py_XDECREF(asgi);
    Py_XDECREF(ext);
    return -1;
}

void sl__scope_fini(void)
{
    Py_CLEAR(sl__py.scope_template);
    Py_CLEAR(last_raw_path);
    Py_CLEAR(last_path);
    Py_CLEAR(last_peer_host);
    Py_CLEAR(last_server);
    Py_CLEAR(last_server_cert);
    last_server_pem = NULL;
}

/* ---- pieces ----------------------------------------------------------------- */

/* ---- the tls extension (ASGI TLS extension spec) ------------------------------ */

static PyObject *https_str; /* "https" */

/* The server certificate PEM as a str (new reference, cached per cert). */
static PyObject *server_cert(const struct sl_tls_conn *t)
{
    const char *pem = sl_tls_server_pem(t);
    if (pem == NULL)
        Py_RETURN_NONE;
    if (pem != last_server_pem || last_server_cert == NULL) {
        Py_CLEAR(last_server_cert);
        last_server_cert = PyUnicode_FromString(pem);
        if (last_server_cert == NULL)
            return NULL;
        last_server_pem = pem;
    }
    Py_INCREF(last_server_cert);
    return last_server_cert;
}

/* scope["extensions"]["tls"] (new reference). */
static PyObject *tls_dict(const struct sl_tls_conn *t)
{
    char name[1024];
    const char *err = sl_tls_client_error(t);
    PyObject *chain = sl__tls_chain_new(t), *d = NULL; /* PEM encoded when read */
    if (chain == NULL)
        goto out;
    PyObject *cname = sl_tls_client_name(t, name, sizeof(name))
                          ? PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name), "replace")
                          : (Py_INCREF(Py_None), Py_None);
    d = Py_BuildValue("{sNsOsNsNsisi}", "server_cert", server_cert(t), "client_cert_chain", chain,
                      "client_cert_name", cname, "client_cert_error",
                      err ? PyUnicode_FromString(err) : (Py_INCREF(Py_None), Py_None),
                      "tls_version", sl_tls_version(t), "cipher_suite", sl_tls_cipher(t));
out:
    Py_XDECREF(chain);
    return d;
}

/* scope[key] = value, stealing `value`. */
static int set_steal(PyObject *scope, PyObject *key, PyObject *value)
{
    int rc;
    if (value == NULL)
        return -1;
    rc = PyDict_SetItem(scope, key, value);
    Py_DECREF(value);
    return rc;
}

/*
 * scope["extensions"] as a dict of this scope's own, to add a key to: the
 * template's shared dict is copied the first time (borrowed; NULL on error).
 */
static PyObject *own_extensions(PyObject *scope)
{
    const struct sl__strs *s = &sl__py.s;
    PyObject *shared = PyDict_GetItem(sl__py.scope_template, s->extensions); /* borrowed */
    PyObject *ext = PyDict_GetItem(scope, s->extensions);                    /* borrowed */
    if (ext != shared)
        return ext;
    if ((ext = PyDict_Copy(shared)) == NULL || set_steal(scope, s->extensions, ext) < 0)
        return NULL;
    return ext; /* the scope holds it */
}

/* A TLS connection: scheme https and "tls" in its extensions. */
static int add_tls(PyObject *scope, const struct sl_tls_conn *t)
{
    const struct sl__strs *s = &sl__py.s;
    PyObject *ext, *tls;
    if (https_str == NULL && (https_str = PyUnicode_InternFromString("https")) == NULL)
        return -1;
    if (PyDict_SetItem(scope, s->scheme, https_str) < 0 || (ext = own_extensions(scope)) == NULL)
        return -1;
    tls = tls_dict(t);
    int rc = tls ? PyDict_SetItemString(ext, "tls", tls) : -1;
    Py_XDECREF(tls);
    return rc;
}

/* New reference. Methods are tchar-only (the parser checks), so ASCII. */
static PyObject *method_str(const char *m, size_t n)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(method_names[i]) == n && memcmp(method_names[i], m, n) == 0)
            return Py_NewRef(methods[i]);
    return PyUnicode_DecodeLatin1(m, (Py_ssize_t)n, NULL);
}

/* Lowercase header name as bytes (new reference). */
static PyObject *header_name(const char *name, size_t n)
{
    PyObject *b;
    char *p;

    for (size_t i = 0; i < NHEADER_NAMES; i++)
        if (header_lens[i] == n && strncasecmp(header_names[i], name, n) == 0)
            return Py_NewRef(header_bytes[i]);
    if ((b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n)) == NULL)
        return NULL;
    p = PyBytes_AS_STRING(b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        p[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return b;
}

/* [(name, value), ...] (new reference). */
static PyObject *headers_list(const struct sl_h1_request *h)
{
    PyObject *list = PyList_New((Py_ssize_t)h->nheaders);

    for (size_t i = 0; list != NULL && i < h->nheaders; i++) {
        const struct sl_h1_header *f = &h->headers[i];
        PyObject *name = header_name(f->name, f->name_len);                              /* new */
        PyObject *value = PyBytes_FromStringAndSize(f->value, (Py_ssize_t)f->value_len); /* new */
        PyObject *pair = (name && value) ? PyTuple_New(2) : NULL;
        if (pair == NULL) {
            Py_XDECREF(name);
            Py_XDECREF(value);
            Py_CLEAR(list);
            break;
        }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/*
 * The scope's `path`: percent-decoded, then UTF-8 decoded with invalid
 * sequences replaced (U+FFFD), as uvicorn does with urllib's unquote. A '%'
 * not followed by two hex digits stays literal. New reference.
 */
static PyObject *path_decode(const char *p, size_t n)
{
    char small[1024] = {0}, *buf; /* zeroed: quiets a false -Wmaybe-uninitialized */
    size_t m = 0;
    PyObject *r;

    if (memchr(p, '%', n) == NULL)
        return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
    buf = n <= sizeof(small) ? small : malloc(n);
    if (buf == NULL)
        return PyErr_NoMemory();
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = sl_h1_hexval((unsigned char)p[i + 1])) >= 0 &&
            (lo = sl_h1_hexval((unsigned char)p[i + 2])) >= 0) {
            buf[m++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            buf[m++] = p[i];
        }
    }
    r = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)m, "replace");
    if (buf != small)
        free(buf);
    return r;
}

/* Sets *raw and *path (new references), from the one-entry cache if the
 * previous request had the same path. */
static int path_pair(const char *p, size_t n, PyObject **raw, PyObject **path)
{
    if (last_raw_path != NULL && (size_t)PyBytes_GET_SIZE(last_raw_path) == n &&
        memcmp(PyBytes_AS_STRING(last_raw_path), p, n) == 0) {
        *raw = Py_NewRef(last_raw_path);
        *path = Py_NewRef(last_path);
        return 0;
    }
    *raw = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    *path = *raw ? path_decode(p, n) : NULL;
    if (*path == NULL) {
        Py_CLEAR(*raw);
        return -1;
    }
    if (n <= PATH_CACHE_MAX) {
        Py_XSETREF(last_raw_path, Py_NewRef(*raw));
        Py_XSETREF(last_path, Py_NewRef(*path));
    }
    return 0;
}

static socklen_t addr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* The numeric host of an AF_INET/AF_INET6 address (new reference). */
static PyObject *host_str(const struct sockaddr *sa)
{
    char buf[INET6_ADDRSTRLEN];
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

    if (inet_ntop(sa->sa_family, a, buf, sizeof(buf)) == NULL)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyUnicode_FromString(buf);
}

static int port_of(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

/* Compares addresses without the port. */
static bool same_host(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* [host, port] of the client, or None for Unix sockets (new reference). */
static PyObject *client_tuple(struct sl_req *req)
{
    socklen_t len = 0;
    const struct sockaddr *sa = sl_req_peer(req, &len); /* proxy: may be IP on unix */

    if (sa == NULL || len == 0 || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return Py_NewRef(Py_None);
    if (last_peer_host == NULL || !same_host(sa, &last_peer)) {
        PyObject *h = host_str(sa);
        if (h == NULL)
            return NULL;
        Py_XSETREF(last_peer_host, h);
        memcpy(&last_peer, sa, addr_len(sa));
    }
    /* By hand: Py_BuildValue parses its format on every request. */
    PyObject *port = PyLong_FromLong(port_of(sa)); /* new */
    PyObject *t = port ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_XDECREF(port);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, Py_NewRef(last_peer_host));
    PyTuple_SET_ITEM(t, 1, port);
    return t;
}

/* [host, port], or [unix_path, None] (new reference, usually cached). */
static PyObject *server_tuple(struct sl_req *req)
{
    socklen_t len = 0;
    const struct sockaddr *sa;

    if (sl_req_is_unix(req)) {
        const char *p = sl_req_unix_path(req);
        if (last_server == NULL || last_unix_path != p || p == NULL) {
            PyObject *t = p ? Py_BuildValue("(sO)", p, Py_None) : Py_NewRef(Py_None);
            if (t == NULL)
                return NULL;
            Py_XSETREF(last_server, t);
            last_unix_path = p;
            last_local.ss_family = AF_UNSPEC;
        }
        return Py_NewRef(last_server);
    }
    sa = sl_req_local(req, &len);
    if (sa == NULL || len == 0 || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return Py_NewRef(Py_None);
    if (last_server == NULL || last_unix_path != NULL || !same_host(sa, &last_local) ||
        port_of(sa) != port_of((const struct sockaddr *)&last_local)) {
        PyObject *h = host_str(sa);
        PyObject *t = h ? Py_BuildValue("(Oi)", h, port_of(sa)) : NULL;
        Py_XDECREF(h);
        if (t == NULL)
            return NULL;
        Py_XSETREF(last_server, t);
        memcpy(&last_local, sa, addr_len(sa));
        last_unix_path = NULL;
    }
    return Py_NewRef(last_server);
}

/* ---- the scope ------------------------------------------------------------------ */

/* proxy.*: the scheme and server a trusted proxy gave. */
static int forwarded(PyObject *scope, struct sl_req *req, bool tls)
{
    const struct sl__strs *s = &sl__py.s;
    int fs = sl_req_forwarded_scheme(req);
    bool https = fs ? fs == 2 : tls;
    if (https_str == NULL && (https_str = PyUnicode_InternFromString("https")) == NULL)
        return -1;
    if (fs && PyDict_SetItem(scope, s->scheme, https ? https_str : s->http) < 0)
        return -1;
    const char *host;
    size_t n;
    int port;
    if (!sl_req_forwarded_host(req, &host, &n, &port))
        return 0;
    if (port == 0)
        port = https ? 443 : 80;
    if (n >= 2 && host[0] == '[') /* ASGI hosts carry no brackets */
        host++, n -= 2;
    PyObject *h = PyUnicode_DecodeLatin1(host, (Py_ssize_t)n, NULL); /* new */
    PyObject *p = h ? PyLong_FromLong(port) : NULL;                  /* new */
    PyObject *t = p ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_XDECREF(h);
        Py_XDECREF(p);
        return -1;
    }
    PyTuple_SET_ITEM(t, 0, h);
    PyTuple_SET_ITEM(t, 1, p);
    return set_steal(scope, s->server, t);
}

/* root_path: X-Forwarded-Prefix from a trusted proxy, else app.root_path.
 * ASGI's path and raw_path include it (the proxy stripped it), so it is put
 * back in front of them. *path is updated (borrowed from the scope). */
static int add_root_path(PyObject *scope, struct sl_req *req, PyObject **path)
{
    const struct sl__strs *s = &sl__py.s;
    const char *pre;
    size_t n;
    if (!sl_req_forwarded_prefix(req, &pre, &n)) {
        pre = sl__py.cfg->app.root_path;
        n = pre ? strlen(pre) : 0;
    }
    PyObject *raw = PyDict_GetItem(scope, s->raw_path); /* borrowed */
    if (n == 0 || raw == NULL || PyBytes_GET_SIZE(raw) == 0 || PyBytes_AS_STRING(raw)[0] != '/')
        return 0;                         /* the root, or a target without a path ("*") */
    PyObject *root = path_decode(pre, n); /* new */
    PyObject *full = root ? PyUnicode_Concat(root, *path) : NULL; /* new */
    PyObject *full_raw =
        full ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n + PyBytes_GET_SIZE(raw)) : NULL;
    if (full_raw == NULL) {
        Py_XDECREF(root);
        Py_XDECREF(full);
        return -1;
    }
    memcpy(PyBytes_AS_STRING(full_raw), pre, n);
    memcpy(PyBytes_AS_STRING(full_raw) + n, PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
    *path = full;
    return (set_steal(scope, s->root_path, root) < 0) | (set_steal(scope, s->path, full) < 0) |
                   (set_steal(scope, s->raw_path, full_raw) < 0)
               ? -1
               : 0;
}

/* http.request_id: scope["extensions"]["request_id"], a str. */
static int add_request_id(PyObject *scope, struct sl_req *req)
{
    size_t n;
    const char *id = sl_req_request_id(req, &n);
    PyObject *ext;
    if (id == NULL)
        return 0;
    if ((ext = own_extensions(scope)) == NULL)
        return -1;
    PyObject *v = PyUnicode_DecodeASCII(id, (Py_ssize_t)n, NULL); /* new; checked ASCII */
    int rc = v ? PyDict_SetItemString(ext, "request_id", v) : -1;
    Py_XDECREF(v);
    return rc;
}

PyObject *sl__scope_http(struct sl_req *req, PyObject **method, PyObject **path)
{
    const struct sl_h1_request *h = sl_req_head(req);
    const struct sl__strs *s = &sl__py.s;
    PyObject *scope = PyDict_Copy(sl__py.scope_template); /* new */
    PyObject *raw = NULL, *p = NULL, *m = NULL;
    PyObject *state = sl__py.lifespan_state; /* borrowed */

    if (scope == NULL)
        return NULL;
    if (path_pair(h->path, h->path_len, &raw, &p) < 0)
        goto fail;
    m = method_str(h->method, h->method_len);
    /* `|`, not `||`: every set_steal runs, so each reference is consumed. */
    if ((set_steal(scope, s->raw_path, raw) < 0) | (set_steal(scope, s->path, p) < 0) |
        (set_steal(scope, s->method, m) < 0))
        goto fail;
    if (PyDict_SetItem(scope, s->http_version, h->minor_version ? s->v1_1 : s->v1_0) < 0 ||
        set_steal(scope, s->query_string,
                  PyBytes_FromStringAndSize(h->query ? h->query : "",
                                            h->query ? (Py_ssize_t)h->query_len : 0)) < 0 ||
        set_steal(scope, s->headers, headers_list(h)) < 0 ||
        set_steal(scope, s->client, client_tuple(req)) < 0 ||
        set_steal(scope, s->server, server_tuple(req)) < 0)
        goto fail;
    const struct sl_tls_conn *tls = sl_req_tls(req);
    if (tls && add_tls(scope, tls) < 0)
        goto fail;
    if (forwarded(scope, req, tls != NULL) < 0) /* proxy.* */
        goto fail;
    if (add_request_id(scope, req) < 0 || add_root_path(scope, req, &p) < 0)
        goto fail;
    /* Present whenever lifespan ran, even empty: ASGI says a missing
     * "state" means the server does not support it. A shallow copy per
     * request, so one request's additions never reach the next. */
    if (state != NULL && set_steal(scope, s->state, PyDict_Copy(state)) < 0)
        goto fail;
    *method = m; /* the scope holds them now */
    *path = p;
    return scope;
fail:
    Py_DECREF(scope);
    return NULL;
}
