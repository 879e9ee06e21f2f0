/*
 * interp: the embedded interpreter. Initialises CPython without its signal
 * handlers, sets up sys.path (app.path, app.venv), creates the event loop
 * and imports the app; also the fork hooks and the logging helpers the rest
 * of the bridge shares.
 */
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "python/bridge.h"
#include "python/bridge_internal.h"
#include "base/log.h"
#include "base/procstat.h"
#include "server/metrics.h"

struct sl__py sl__py;

static const struct {
    size_t off;
    const char *text;
} strings[] = {
#define S(field, text)                                                                             \
    {                                                                                              \
        offsetof(struct sl__strs, field), text                                                     \
    }
    S(type, "type"),
    S(asgi, "asgi"),
    S(http_version, "http_version"),
    S(method, "method"),
    S(scheme, "scheme"),
    S(path, "path"),
    S(raw_path, "raw_path"),
    S(query_string, "query_string"),
    S(root_path, "root_path"),
    S(headers, "headers"),
    S(client, "client"),
    S(server, "server"),
    S(state, "state"),
    S(extensions, "extensions"),
    S(version, "version"),
    S(spec_version, "spec_version"),
    S(body, "body"),
    S(more_body, "more_body"),
    S(status, "status"),
    S(trailers, "trailers"),
    S(more_trailers, "more_trailers"),
    S(message, "message"),
    S(http, "http"),
    S(lifespan, "lifespan"),
    S(v1_0, "1.0"),
    S(v1_1, "1.1"),
    S(empty, ""),
    S(http_request, "http.request"),
    S(http_disconnect, "http.disconnect"),
    S(lifespan_startup, "lifespan.startup"),
    S(lifespan_shutdown, "lifespan.shutdown"),
    S(_asyncio_future_blocking, "_asyncio_future_blocking"),
    S(set_result, "set_result"),
    S(done, "done"),
    S(cancel, "cancel"),
    S(exception, "exception"),
    S(add_done_callback, "add_done_callback"),
#undef S
};

static int strings_init(void)
{
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        PyObject *o = PyUnicode_InternFromString(strings[i].text);
        if (o == NULL)
            return -1;
        *(PyObject **)((char *)&sl__py.s + strings[i].off) = o;
    }
    return 0;
}

/* ---- logging ------------------------------------------------------------ */

/* One line through the core's error log, after whatever Python printed. */
static void vlog_line(enum sl_log_level level, const char *fmt, va_list ap)
{
    if (!sl_log_enabled(level))
        return;
    /* Python's sys.stderr may hold buffered text: keep the order. */
    PyObject *err = PySys_GetObject("stderr"); /* borrowed */
    if (err != NULL) {
        PyObject *r = PyObject_CallMethod(err, "flush", NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    sl_vlog(level, fmt, ap);
}

void sl__py_log(enum sl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_line(level, fmt, ap);
    va_end(ap);
}

/*
 * Logs exc's traceback as one block through the error log's buffer, so a
 * slow stderr consumer never blocks the worker (base/log.h). Only if it
 * cannot be formatted does PyErr_Display print it (which, unlike
 * PyErr_Print, does not exit the process on SystemExit).
 */
static void display(PyObject *exc)
{
    PyObject *mod = NULL, *lines = NULL, *sep = NULL, *text = NULL, *utf8 = NULL;

    if ((mod = PyImport_ImportModule("traceback")) != NULL &&
        (lines = PyObject_CallMethod(mod, "format_exception", "O", exc)) != NULL &&
        (sep = PyUnicode_FromString("")) != NULL && (text = PyUnicode_Join(sep, lines)) != NULL &&
        (utf8 = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace")) != NULL) {
        sl_log_block(PyBytes_AS_STRING(utf8), (size_t)PyBytes_GET_SIZE(utf8));
    } else {
        PyObject *tb = PyException_GetTraceback(exc); /* new */
        PyErr_Clear();
        sl_log_flush(); /* the header line first */
        PyErr_Display((PyObject *)Py_TYPE(exc), exc, tb);
        Py_XDECREF(tb);
    }
    PyErr_Clear();
    Py_XDECREF(utf8);
    Py_XDECREF(text);
    Py_XDECREF(sep);
    Py_XDECREF(lines);
    Py_XDECREF(mod);
}

void sl__py_log_error(const char *fmt, ...)
{
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    va_list ap;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    va_start(ap, fmt);
    vlog_line(SL_LOG_ERROR, fmt, ap);
    va_end(ap);
    if (value != NULL)
        display(value);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

void sl__py_log_exception(PyObject *exc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_line(SL_LOG_ERROR, fmt, ap);
    va_end(ap);
    display(exc);
}

void sl__py_compact(void)
{
    PyObject *gc = PyImport_ImportModule("gc"); /* new */
    PyObject *r = NULL;

    if (gc != NULL) {
        r = PyObject_CallMethod(gc, "collect", NULL);
        Py_XDECREF(r);
        r = PyObject_CallMethod(gc, "freeze", NULL);
        Py_XDECREF(r);
        Py_DECREF(gc);
    }
    PyErr_Clear();
    malloc_trim(0);
    sl_proc_release_text();
}

/* ---- the loop ------------------------------------------------------------ */

int sl__py_bind_loop(PyObject *loop)
{
    PyObject *m[5] = {NULL, NULL, NULL, NULL, NULL};
    static const char *names[5] = {"create_task", "create_future", "call_soon", "call_later",
                                   "get_task_factory"};

    for (int i = 0; i < 5; i++) {
        m[i] = PyObject_GetAttrString(loop, names[i]); /* new */
        if (m[i] == NULL) {
            for (int j = 0; j < i; j++)
                Py_DECREF(m[j]);
            return -1;
        }
    }
    Py_XSETREF(sl__py.loop, Py_NewRef(loop));
    Py_XSETREF(sl__py.create_task, m[0]);
    Py_XSETREF(sl__py.create_future, m[1]);
    Py_XSETREF(sl__py.call_soon, m[2]);
    Py_XSETREF(sl__py.call_later, m[3]);
    Py_XSETREF(sl__py.get_task_factory, m[4]);
    return 0;
}

/* The loop factory for app.loop (new reference), or NULL with an error. */
static PyObject *loop_factory(enum sl_loop_kind kind)
{
    PyObject *mod = NULL, *f = NULL;

    if (kind != SL_LOOP_ASYNCIO) {
        mod = PyImport_ImportModule("uvloop"); /* new */
        if (mod == NULL && kind == SL_LOOP_UVLOOP)
            return NULL;
        if (mod == NULL) {
            PyErr_Clear();
            sl__py_log(SL_LOG_DEBUG, "uvloop is not importable; using asyncio");
        }
    }
    const char *pv = Py_GetVersion(); /* "3.11.2 (main, ...)" */
    char ver[32];
    snprintf(ver, sizeof(ver), "%.*s", (int)strcspn(pv, " "), pv);
    sl_metrics_set_build(ver, mod ? "uvloop" : "asyncio"); /* saltare_build_info */
    if (mod == NULL && (mod = PyImport_ImportModule("asyncio")) == NULL)
        return NULL;
    f = PyObject_GetAttrString(mod, "new_event_loop"); /* new */
    Py_DECREF(mod);
    return f;
}

/* Creates a loop from sl__py.loop_factory, makes it current and binds it. */
static int loop_install(void)
{
    PyObject *asyncio = NULL, *loop = NULL, *r = NULL;
    int rc = -1;

    loop = PyObject_CallNoArgs(sl__py.loop_factory); /* new */
    if (loop == NULL)
        goto out;
    asyncio = PyImport_ImportModule("asyncio"); /* new */
    if (asyncio == NULL)
        goto out;
    r = PyObject_CallMethod(asyncio, "set_event_loop", "O", loop); /* new */
    if (r == NULL)
        goto out;
    rc = sl__py_bind_loop(loop);
out:
    Py_XDECREF(r);
    Py_XDECREF(asyncio);
    Py_XDECREF(loop);
    return rc;
}

/* ---- sys.path --------------------------------------------------------------- */

/* Inserts `dir` (made absolute when it exists) at sys.path[pos]. */
static int path_insert(PyObject *sys_path, Py_ssize_t pos, const char *dir)
{
    char abs[PATH_MAX];
    const char *p = realpath(dir, abs) ? abs : dir;
    PyObject *s = PyUnicode_DecodeFSDefault(p); /* new */
    int rc;

    if (s == NULL)
        return -1;
    rc = PyList_Insert(sys_path, pos, s);
    Py_DECREF(s);
    return rc;
}

/*
 * app.venv: adds VENV/lib/pythonX.Y/site-packages with site.addsitedir (so
 * its .pth files are honoured) and moves the entries it added in front of
 * the system ones, right after app.path, as an activated venv would order
 * them.
 */
static int venv_add(PyObject *sys_path, Py_ssize_t front, const char *venv)
{
    char dir[PATH_MAX];
    struct stat st;
    PyObject *site = NULL, *r = NULL, *added = NULL;
    Py_ssize_t before = PyList_GET_SIZE(sys_path), after;
    int rc = -1;

    snprintf(dir, sizeof(dir), "%s/lib/python%d.%d/site-packages", venv, PY_MAJOR_VERSION,
             PY_MINOR_VERSION);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        PyErr_Format(PyExc_FileNotFoundError, "app.venv: %s is not a directory", dir);
        return -1;
    }
    if ((site = PyImport_ImportModule("site")) == NULL)
        goto out;
    if ((r = PyObject_CallMethod(site, "addsitedir", "s", dir)) == NULL)
        goto out;
    after = PyList_GET_SIZE(sys_path);
    if (after < before)
        after = before;
    if ((added = PyList_GetSlice(sys_path, before, after)) == NULL)
        goto out;
    if (PyList_SetSlice(sys_path, before, after, NULL) < 0)
        goto out;
    rc = PyList_SetSlice(sys_path, front, front, added);
out:
    Py_XDECREF(added);
    Py_XDECREF(r);
    Py_XDECREF(site);
    return rc;
}

/*
 * sys.executable would name saltare (or nothing): point it at a real
 * interpreter so that subprocess and multiprocessing work. The venv's
 * python when app.venv has one, else the base installation's.
 */
static void executable_setup(const char *venv)
{
    char exe[PATH_MAX] = "";
    PyObject *base = PySys_GetObject("base_prefix"); /* borrowed */
    const char *prefix = base && PyUnicode_Check(base) ? PyUnicode_AsUTF8(base) : NULL;
    PyObject *s;

    if (venv != NULL)
        snprintf(exe, sizeof(exe), "%s/bin/python", venv);
    if ((exe[0] == '\0' || access(exe, X_OK) != 0) && prefix != NULL)
        snprintf(exe, sizeof(exe), "%s/bin/python%d.%d", prefix, PY_MAJOR_VERSION,
                 PY_MINOR_VERSION);
    if (exe[0] == '\0' || access(exe, X_OK) != 0 || (s = PyUnicode_DecodeFSDefault(exe)) == NULL) {
        PyErr_Clear();
        return;
    }
    if (PySys_SetObject("executable", s) < 0 || PySys_SetObject("_base_executable", s) < 0)
        PyErr_Clear();
    Py_DECREF(s);
}

static int sys_path_setup(const struct sl_app_config *app)
{
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */

    if (sys_path == NULL || !PyList_Check(sys_path)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        return -1;
    }
    for (size_t i = 0; i < app->npath; i++)
        if (path_insert(sys_path, (Py_ssize_t)i, app->path[i]) < 0)
            return -1;
    if (app->venv != NULL && venv_add(sys_path, (Py_ssize_t)app->npath, app->venv) < 0)
        return -1;
    return 0;
}

/* ---- the app ------------------------------------------------------------- */

/* module.attr with a possibly dotted attr (new reference). */
static PyObject *app_import(const struct sl_app_config *app)
{
    PyObject *obj = PyImport_ImportModule(app->module); /* new */
    const char *a = app->attr;

    while (obj != NULL && *a != '\0') {
        const char *dot = strchr(a, '.');
        size_t n = dot ? (size_t)(dot - a) : strlen(a);
        PyObject *name = PyUnicode_FromStringAndSize(a, (Py_ssize_t)n); /* new */
        PyObject *next = name ? PyObject_GetAttr(obj, name) : NULL;     /* new */
        Py_XDECREF(name);
        Py_SETREF(obj, next);
        a += n + (dot != NULL);
    }
    if (obj != NULL && !PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s is a %.100s, not an ASGI callable", app->target,
                     Py_TYPE(obj)->tp_name);
        Py_CLEAR(obj);
    }
    return obj;
}

static int interpreter_start(const struct sl_config *cfg)
{
    PyConfig config;
    PyStatus st;
    wchar_t *argv[1] = {L"saltare"};

    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* serve.c installs its own */
    config.parse_argv = 0;
    config.optimization_level = (int)cfg->python.optimize; /* python.optimize: -O, -OO */
    st = PyConfig_SetString(&config, &config.program_name, L"saltare");
    if (!PyStatus_Exception(st))
        st = PyConfig_SetArgv(&config, 1, argv);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        sl_log(SL_LOG_ERROR, "cannot initialise Python: %s",
               st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    return 0;
}

static int exceptions_init(void)
{
    sl__py.client_disconnected = PyErr_NewExceptionWithDoc(
        "saltare.ClientDisconnected",
        "send() was called after the client disconnected (ASGI HTTP spec 2.4).", PyExc_OSError,
        NULL);
    return sl__py.client_disconnected ? 0 : -1;
}

int sl_py_init(const struct sl_config *cfg)
{
    sl__py.cfg = cfg;
    mallopt(M_ARENA_MAX, 2); /* one thread serves; a second arena covers helpers */
    if (interpreter_start(cfg) < 0)
        return SL_PY_APP_FAILED;
    if (strings_init() < 0 || exceptions_init() < 0 || sl__awaitable_init() < 0 ||
        sl__scope_init() < 0 || sl__tls_chain_init() < 0 || sl__request_init() < 0 ||
        sl__send_init() < 0 || sl__lifespan_init() < 0 || sl__tracemalloc_init(cfg) < 0) {
        sl__py_log_error("cannot initialise the bridge");
        return SL_PY_APP_FAILED;
    }
    if (sys_path_setup(&cfg->app) < 0) {
        sl__py_log_error("cannot set up sys.path");
        return SL_PY_APP_FAILED;
    }
    executable_setup(cfg->app.venv);
    sl__py.loop_factory = loop_factory(cfg->app.loop);
    if (sl__py.loop_factory == NULL || loop_install() < 0) {
        static const char *const kinds[] = {"auto", "asyncio", "uvloop"};
        sl__py_log_error("cannot create the event loop (app.loop: %s)", kinds[cfg->app.loop]);
        return SL_PY_APP_FAILED;
    }
    /* The loop is current before the import: apps that grab it then work. */
    sl__py.app = app_import(&cfg->app);
    if (sl__py.app == NULL) {
        sl__py_log_error("cannot load the app %s", cfg->app.target);
        return SL_PY_APP_FAILED;
    }
    sl__py_compact();
    return 0;
}

/* ---- fork ------------------------------------------------------------------ */

pid_t sl_py_fork(void)
{
    pid_t pid;

    if (!Py_IsInitialized()) /* app.preload off: the master never started Python */
        return fork();
    PyOS_BeforeFork();
    pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        sl__py.forked = true;
    } else {
        int saved = errno;
        PyOS_AfterFork_Parent();
        errno = saved;
    }
    return pid;
}

/*
 * A forked child must not use the parent's loop: its epoll instance (and
 * self-pipe) are shared with the parent, so registering or closing anything
 * there would change the parent's loop. The old loop is kept referenced
 * forever (its finaliser would close it) and a fresh one is made current.
 */
int sl__py_loop_for_child(void)
{
    if (!sl__py.forked || sl__py.inherited_loop != NULL)
        return 0;
    sl__py.inherited_loop = Py_NewRef(sl__py.loop);
    return loop_install();
}

/* Flushes sys.stdout and sys.stderr: what the app printed reaches the log. */
static void stdio_flush(void)
{
    static const char *const names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        if (f != NULL)
            Py_XDECREF(PyObject_CallMethod(f, "flush", NULL));
        PyErr_Clear();
    }
}

void sl_py_fini(void)
{
    if (!Py_IsInitialized())
        return;
    if (sl__py.aborted) {
        /* Exiting at once: finalising would join the app's threads (anyio
         * workers, executors, a sync endpoint still running), which need
         * not ever end. */
        stdio_flush();
        return;
    }
    sl__tracemalloc_fini();
    sl__scope_fini();
    Py_CLEAR(sl__py.app);
    Py_CLEAR(sl__py.create_task);
    Py_CLEAR(sl__py.create_future);
    Py_CLEAR(sl__py.call_soon);
    Py_CLEAR(sl__py.call_later);
    Py_CLEAR(sl__py.get_task_factory);
    if (sl__py.loop != NULL && !sl__py.forked) {
        PyObject *r = PyObject_CallMethod(sl__py.loop, "close", NULL); /* new */
        if (r == NULL)
            sl__py_log_error("closing the event loop failed");
        Py_XDECREF(r);
    }
    Py_CLEAR(sl__py.loop);
    Py_CLEAR(sl__py.loop_factory);
    Py_CLEAR(sl__py.lifespan_state);
    if (Py_FinalizeEx() < 0)
        sl_log(SL_LOG_ERROR, "Python finalisation reported errors");
}
