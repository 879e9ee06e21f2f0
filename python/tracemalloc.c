/*
 * tracemalloc: the `tracemalloc` route action. The bridge answers it from
 * the worker's own interpreter (the app is not called): the traced size and
 * the top allocation sites, as text. Tracing starts at startup only when a
 * route asks for it, since it slows every allocation.
 */
#include <stdio.h>
#include <string.h>

#include "python/bridge_internal.h"

/* Our report, run in the worker's interpreter: text, or None when
 * tracemalloc is not tracing (someone stopped it). */
static const char report_src[] =
    "import tracemalloc\n"
    "def report(top):\n"
    "    if not tracemalloc.is_tracing():\n"
    "        return None\n"
    "    now, peak = tracemalloc.get_traced_memory()\n"
    "    snap = tracemalloc.take_snapshot().filter_traces(\n"
    "        (tracemalloc.Filter(False, tracemalloc.__file__),))\n"
    "    stats = snap.statistics('lineno')\n"
    "    out = [f'traced {now} bytes now, {peak} bytes at peak; {len(stats)} sites, '\n"
    "           f'top {min(top, len(stats))} by size:', '']\n"
    "    for s in stats[:top]:\n"
    "        f = s.traceback[0]\n"
    "        out.append(f'{s.size:>12} B {s.count:>9} blocks  {f.filename}:{f.lineno}')\n"
    "    return '\\n'.join(out) + '\\n'\n";

static PyObject *report_fn; /* strong; NULL = no tracemalloc route */

static bool wanted(const struct sl_route_list *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].action == SL_ROUTE_TRACEMALLOC)
            return true;
    return false;
}

int sl__tracemalloc_init(const struct sl_config *cfg)
{
    bool want = wanted(&cfg->routes);
    for (size_t i = 0; i < cfg->nlisteners && !want; i++)
        want = wanted(&cfg->listeners[i].routes);
    if (!want)
        return 0;
    PyObject *globals = NULL, *r = NULL;
    int rc = -1;
    if ((globals = PyDict_New()) == NULL || /* new */
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        (r = PyRun_String(report_src, Py_file_input, globals, globals)) == NULL) /* new */
        goto out;
    report_fn = Py_XNewRef(PyDict_GetItemString(globals, "report"));
    Py_DECREF(r);
    r = PyRun_String("tracemalloc.start()", Py_eval_input, globals, globals); /* new */
    rc = r && report_fn ? 0 : -1;
    if (rc == 0)
        sl__py_log(SL_LOG_INFO, "tracemalloc: tracing Python allocations (a route asks for it)");
out:
    Py_XDECREF(r);
    Py_XDECREF(globals);
    return rc;
}

void sl__tracemalloc_fini(void)
{
    if (report_fn == NULL)
        return;
    Py_CLEAR(report_fn);
    PyObject *mod = PyImport_ImportModule("tracemalloc");              /* new */
    PyObject *r = mod ? PyObject_CallMethod(mod, "stop", NULL) : NULL; /* new */
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(mod);
}

static void answer(struct sl_req *req, int status, const char *text, size_t len)
{
    char cl[24];
    int k = snprintf(cl, sizeof(cl), "%zu", len);
    struct sl_h1_header h[] = {
        {"content-type", 12, "text/plain; charset=utf-8", 25},
        {"cache-control", 13, "no-store", 8},
        {"content-length", 14, cl, (size_t)k},
        {"allow", 5, "GET, HEAD", 9}, /* 405 only */
    };
    if (sl_resp_start(req, status, h, status == 405 ? 4 : 3, false) < 0 ||
        sl_resp_body(req, text, len, false) < 0)
        sl_resp_error(req, 500);
    sl__serve_flush_soon();
    sl_req_release(req);
}

bool sl__tracemalloc_answer(struct sl_req *req)
{
    const struct sl_route_config *rt = sl_req_route(req);
    if (rt == NULL || rt->action != SL_ROUTE_TRACEMALLOC)
        return false;
    const struct sl_h1_request *h = sl_req_head(req);
    bool get = h->method_len == 3 && memcmp(h->method, "GET", 3) == 0;
    bool head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    if (!get && !head) {
        answer(req, 405, "Method Not Allowed\n", 19);
        return true;
    }
    PyObject *text = report_fn ? PyObject_CallFunction(report_fn, "I", rt->tracemalloc.top) : NULL;
    Py_ssize_t len;
    const char *s = text && text != Py_None ? PyUnicode_AsUTF8AndSize(text, &len) : NULL;
    if (s)
        answer(req, 200, s, (size_t)len);
    else if (text == Py_None)
        answer(req, 503, "tracemalloc is not tracing\n", 27);
    else {
        sl__py_log_error("tracemalloc report failed");
        answer(req, 500, "Internal Server Error\n", 22);
    }
    Py_XDECREF(text);
    return true;
}
