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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
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

/* ---- the bounded import (app.preload, in the master) ---------------------- */

static const int guard_sigs[] = {SIGALRM, SIGTERM, SIGINT};
#define NGUARD (sizeof(guard_sigs) / sizeof(guard_sigs[0]))
#define STUCK_GRACE_S 10 /* after the deadline or a stop, before giving up (give_up) */
#define STUCK_GRACE_S_TEXT "10"

static struct {
    bool on;
    int by;           /* the first signal taken: SIGTERM/SIGINT win over SIGALRM */
    unsigned limit_s; /* for the message */
    bool timed;       /* timeouts.startup is not 0 */
    bool give_up;     /* _exit when the import stays stuck (first start) */
    struct sigaction saved[NGUARD];
    sigset_t mask; /* the caller's */
} guard;

static volatile sig_atomic_t guard_ticks, guard_stop_ticks, guard_stopped;

static void guard_stuck(const char *why)
{
    static const char head[] = "saltare: error: the app import did not return ";
    static const char tail[] = "; it is stuck in code that does not check for signals: exiting\n";
    ssize_t n = write(STDERR_FILENO, head, sizeof(head) - 1);
    n = write(STDERR_FILENO, why, strlen(why));
    n = write(STDERR_FILENO, tail, sizeof(tail) - 1);
    (void)n;
    _exit(SL_PY_APP_FAILED);
}

/*
 * The C handler of the three signals during the import: trips the Python
 * handler (guard_handler, run at the next check: a blocking call returns
 * EINTR and checks). The timer ticks once a second after the deadline
 * (without timeouts.startup: every second, only counted); with give_up, an
 * import that has not returned STUCK_GRACE_S ticks after the deadline or a
 * stop is in C code that never checks, and the process exits.
 */
static void guard_on_signal(int sig)
{
    int saved = errno;

    if (sig == SIGALRM) {
        guard_ticks++;
        if (guard_stopped)
            guard_stop_ticks++;
        if (guard.timed)
            PyErr_SetInterruptEx(SIGALRM);
        if (guard.give_up && guard.timed && guard_ticks > STUCK_GRACE_S)
            guard_stuck(STUCK_GRACE_S_TEXT " s after timeouts.startup");
        if (guard.give_up && guard_stop_ticks > STUCK_GRACE_S)
            guard_stuck(STUCK_GRACE_S_TEXT " s after a stop signal");
    } else {
        guard_stopped = 1;
        PyErr_SetInterruptEx(sig);
    }
    errno = saved;
}

/* The Python handler of the three signals: raises in the code running. */
static PyObject *guard_handler(PyObject *self, PyObject *args)
{
    int sig;
    PyObject *frame;

    (void)self;
    if (!PyArg_ParseTuple(args, "iO", &sig, &frame))
        return NULL;
    if (guard.by == 0 || (guard.by == SIGALRM && sig != SIGALRM))
        guard.by = sig;
    if (sig == SIGALRM)
        PyErr_Format(PyExc_TimeoutError, "app import did not finish within timeouts.startup (%u s)",
                     guard.limit_s);
    else
        PyErr_Format(PyExc_KeyboardInterrupt, "%s during the app import",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return NULL;
}

static PyMethodDef guard_def = {"import_deadline", guard_handler, METH_VARARGS, NULL};

/* signal.signal(sig, handler) for each; handler NULL: SIG_DFL. */
static int guard_python_handlers(PyObject *handler)
{
    PyObject *mod = PyImport_ImportModule("signal");                     /* new */
    PyObject *dfl = mod ? PyObject_GetAttrString(mod, "SIG_DFL") : NULL; /* new */
    int rc = mod && dfl ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < NGUARD; i++) {
        PyObject *r =
            PyObject_CallMethod(mod, "signal", "iO", guard_sigs[i], handler ? handler : dfl);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
    }
    Py_XDECREF(dfl);
    Py_XDECREF(mod);
    return rc;
}

static int guard_begin(const struct sl_config *cfg, bool give_up)
{
    uint32_t ms = cfg->timeouts.startup_ms ? cfg->timeouts.startup_ms : 1000;
    struct itimerval it = {{1, 0}, {ms / 1000, (long)(ms % 1000) * 1000L}};
    struct sigaction sa = {.sa_handler = guard_on_signal};
    PyObject *handler;
    sigset_t set;

    memset(&guard, 0, sizeof(guard));
    guard_ticks = guard_stop_ticks = guard_stopped = 0;
    guard.limit_s = cfg->timeouts.startup_ms / 1000;
    guard.timed = cfg->timeouts.startup_ms != 0;
    guard.give_up = give_up;
    for (size_t i = 0; i < NGUARD; i++)
        if (sigaction(guard_sigs[i], NULL, &guard.saved[i]) < 0)
            return -1;
    handler = PyCFunction_New(&guard_def, NULL); /* new */
    if (handler == NULL || guard_python_handlers(handler) < 0) {
        Py_XDECREF(handler);
        sl__py_log_error("cannot install the signal handlers for the app import");
        return -1;
    }
    Py_DECREF(handler); /* the signal module holds it */
    guard.on = true;
    /* Ours in front of CPython's (which only trips): the same, plus the
     * tick count. Each blocks the others while it runs. */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NGUARD; i++)
        sigaddset(&sa.sa_mask, guard_sigs[i]);
    set = sa.sa_mask;
    for (size_t i = 0; i < NGUARD; i++)
        sigaction(guard_sigs[i], &sa, NULL);
    if (setitimer(ITIMER_REAL, &it, NULL) < 0)
        sl_log(SL_LOG_WARNING, "app import: no timer for timeouts.startup: %s", strerror(errno));
    sigprocmask(SIG_UNBLOCK, &set, &guard.mask);
    return 0;
}

/* Undoes guard_begin; keeps the exception set, if any. */
static void guard_end(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    PyObject *type, *value, *tb;
    sigset_t set;

    if (!guard.on)
        return;
    guard.on = false;
    setitimer(ITIMER_REAL, &off, NULL);
    sigemptyset(&set);
    for (size_t i = 0; i < NGUARD; i++)
        sigaddset(&set, guard_sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    PyErr_Fetch(&type, &value, &tb);
    /* A signal taken between the import's end and the block above only
     * tripped a flag: run its handler now (it records guard.by), not at
     * some later check in a worker. */
    if (PyErr_CheckSignals() < 0)
        PyErr_Clear();
    if (guard_python_handlers(NULL) < 0)
        PyErr_Clear();
    sigaction(SIGALRM, &ign, NULL); /* drops a SIGALRM still pending */
    for (size_t i = 0; i < NGUARD; i++)
        sigaction(guard_sigs[i], &guard.saved[i], NULL);
    sigprocmask(SIG_SETMASK, &guard.mask, NULL);
    PyErr_Restore(type, value, tb);
}

static int py_init(const struct sl_config *cfg, int bounded);

int sl_py_init_bounded(const struct sl_config *cfg, bool give_up, int *interrupted_by)
{
    int rc = py_init(cfg, give_up ? 2 : 1);

    *interrupted_by = guard.by;
    if (rc == 0 && guard.by != 0) { /* the app caught the exception and finished */
        sl_log(SL_LOG_ERROR, "cannot load the app %s: %s", cfg->app.target,
               guard.by == SIGALRM ? "its import did not finish within timeouts.startup"
                                   : "interrupted by a stop signal");
        return SL_PY_APP_FAILED;
    }
    return rc;
}

int sl_py_init(const struct sl_config *cfg)
{
    return py_init(cfg, 0);
}

/* bounded: 0 no, 1 yes, 2 yes and give up when stuck. */
static int py_init(const struct sl_config *cfg, int bounded)
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
    if (bounded && guard_begin(cfg, bounded == 2) < 0)
        return SL_PY_APP_FAILED;
    sl__py.app = app_import(&cfg->app);
    if (bounded)
        guard_end();
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
