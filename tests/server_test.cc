// The C core end to end: a real worker on loopback, a fake app in C++,
// real sockets. The worker runs on its own thread; every app callback runs
// on that thread. Two ways to drive it: sl_worker_run (the app answers from
// its callbacks) or an external poll loop like the Python bridge's, where
// the test can also run app code on the worker thread between polls.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/listen.h"
#include "base/log.h"
#include "server/server.h"
#include "server/transport.h"
#include "tests/test_server.h"

namespace
{

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/* ---- the fake app ------------------------------------------------------ */

struct Hdr {
    std::string name, value;
};

struct ReqState {
    std::string method, path;
    uint64_t body_bytes = 0;
    uint32_t sum = 0;
    uint64_t sent = 0;
};

class App
{
  public:
    App()
    {
        ops.on_request = &App::OnRequest;
        ops.on_event = &App::OnEvent;
    }

    sl_app_ops ops{};
    sl_worker *w = nullptr;

    std::mutex mu;
    std::condition_variable cv;
    int requests = 0;
    int disconnects = 0;
    int cancels = 0;
    int drains = 0;
    int blocked = 0;
    std::vector<int> rcs; /* return codes the app saw, in order */
    std::deque<sl_req *> held;
    std::vector<std::string> seen_paths;

    template <class Pred> bool WaitFor(Pred pred, std::chrono::milliseconds t = 5000ms)
    {
        std::unique_lock<std::mutex> lk(mu);
        return cv.wait_for(lk, t, pred);
    }

    void Record(int rc)
    {
        std::lock_guard<std::mutex> lk(mu);
        rcs.push_back(rc);
        cv.notify_all();
    }

    static int Start(sl_req *r, int status, const std::vector<Hdr> &hs, bool trailers = false)
    {
        std::vector<sl_h1_header> v;
        for (const Hdr &h : hs)
            v.push_back({h.name.data(), h.name.size(), h.value.data(), h.value.size()});
        return sl_resp_start(r, status, v.data(), v.size(), trailers);
    }

    static void Respond(sl_req *r, int status, const std::string &body)
    {
        Start(r, status,
              {{"Content-Type", "text/plain"}, {"Content-Length", std::to_string(body.size())}});
        sl_resp_body(r, body.data(), body.size(), false);
    }

    static void Done(sl_req *r)
    {
        delete static_cast<ReqState *>(sl_req_data(r));
        sl_req_release(r);
    }

  private:
    static App *Of(void *app)
    {
        return static_cast<App *>(app);
    }

    static void OnRequest(void *app, sl_req *r)
    {
        App *a = Of(app);
        const sl_h1_request *h = sl_req_head(r);
        auto *st = new ReqState;
        st->method.assign(h->method, h->method_len);
        st->path.assign(h->path, h->path_len);
        sl_req_set_data(r, st);
        {
            std::lock_guard<std::mutex> lk(a->mu);
            a->requests++;
            a->seen_paths.push_back(st->path);
            a->cv.notify_all();
        }
        a->Route(r, st);
    }

    static void OnEvent(void *app, sl_req *r, sl_req_event ev)
    {
        App *a = Of(app);
        auto *st = static_cast<ReqState *>(sl_req_data(r));
        if (ev == SL_REQ_DISCONNECT) {
            int rc = Start(r, 200, {});
            {
                std::lock_guard<std::mutex> lk(a->mu);
                a->disconnects++;
                a->rcs.push_back(rc);
                a->cv.notify_all();
            }
            if (st->path == "/stubborn")
                return; /* works on regardless: only timeouts.app stops it */
            a->Forget(r);
            Done(r);
        } else if (ev == SL_REQ_CANCEL) { /* timeouts.app: stop working on it */
            int rc = sl_resp_body(r, "late", 4, false);
            a->Forget(r);
            {
                std::lock_guard<std::mutex> lk(a->mu);
                a->cancels++;
                a->rcs.push_back(rc);
                a->cv.notify_all();
            }
            Done(r);
        } else if (ev == SL_REQ_BODY) {
            a->PumpBody(r, st);
        } else if (ev == SL_REQ_DRAIN) {
            {
                std::lock_guard<std::mutex> lk(a->mu);
                a->drains++;
            }
            a->PumpBig(r, st);
        }
    }

    /* Drops r from `held` (it is being answered or is gone). */
    void Forget(sl_req *r)
    {
        std::lock_guard<std::mutex> lk(mu);
        for (auto it = held.begin(); it != held.end(); ++it)
            if (*it == r) {
                held.erase(it);
                break;
            }
    }

    void Route(sl_req *r, ReqState *st)
    {
        const std::string &p = st->path;
        if (p == "/hello") {
            Respond(r, 200, "hello world");
            Done(r);
        } else if (p.rfind("/p/", 0) == 0) {
            Respond(r, 200, st->method + " " + p);
            Done(r);
        } else if (p == "/chunked") {
            Start(r, 200, {{"Content-Type", "text/plain"}});
            sl_resp_body(r, "abc", 3, true);
            sl_resp_body(r, "defg", 4, true);
            sl_resp_body(r, "", 0, false);
            Done(r);
        } else if (p == "/nocontent") {
            Start(r, 204, {{"Content-Length", "7"}}); /* must not reach the wire */
            sl_resp_body(r, "ignored", 7, false);
            Done(r);
        } else if (p == "/badheader") {
            Record(Start(r, 200, {{"X-Bad", "a\r\nInjected: yes"}}));
            Record(Start(r, 200, {{"Bad Name", "x"}}));
            sl_resp_error(r, 500);
            Done(r);
        } else if (p == "/error") {
            sl_resp_error(r, 500);
            Done(r);
        } else if (p == "/overrun") {
            Start(r, 200, {{"Content-Length", "5"}});
            Record(sl_resp_body(r, "0123456789", 10, true));
            Record(sl_resp_body(r, "01234", 5, false));
            Done(r);
        } else if (p == "/short") {
            Start(r, 200, {{"Content-Length", "10"}});
            sl_resp_body(r, "01234", 5, false);
            Done(r);
        } else if (p == "/trailers") {
            Start(r, 200, {{"Trailer", "X-Sum"}}, true);
            sl_resp_body(r, "data", 4, false);
            Record(sl_resp_trailers(r, nullptr, 0) == 0 ? 0 : -1);
            Done(r);
        } else if (p == "/trailers2") {
            Start(r, 200, {{"Trailer", "X-Sum"}}, true);
            sl_resp_body(r, "data", 4, false);
            sl_h1_header t = {"X-Sum", 5, "42", 2};
            sl_resp_trailers(r, &t, 1);
            Done(r);
        } else if (p == "/echo") {
            PumpBody(r, st);
        } else if (p == "/big") {
            Start(r, 200, {{"Content-Length", std::to_string(kBig)}});
            PumpBig(r, st);
        } else if (p == "/server") {
            Start(r, 200, {{"Server", "custom"}, {"Content-Length", "0"}});
            sl_resp_body(r, nullptr, 0, false);
            Done(r);
        } else if (p == "/forget") {
            Done(r); /* released without an answer */
        } else {     /* "/hold" and anything else: answered later */
            std::lock_guard<std::mutex> lk(mu);
            held.push_back(r);
            cv.notify_all();
        }
    }

  public:
    static constexpr uint64_t kBig = 16u << 20; /* > the kernel's socket buffers */

    /* Consumes the body in pieces of at most 1000 bytes; answers with the
     * byte count and a checksum once it is complete. */
    void PumpBody(sl_req *r, ReqState *st)
    {
        for (;;) {
            const char *d;
            size_t len;
            bool done;
            int rc = sl_req_body_peek(r, &d, &len, &done);
            if (rc < 0) {
                Record(rc);
                Done(r);
                return;
            }
            if (done) {
                Respond(r, 200,
                        "bytes=" + std::to_string(st->body_bytes) +
                            " sum=" + std::to_string(st->sum));
                Done(r);
                return;
            }
            if (len == 0)
                return; /* SL_REQ_BODY will call again */
            size_t n = len < 1000 ? len : 1000;
            for (size_t i = 0; i < n; i++)
                st->sum = st->sum * 31 + static_cast<unsigned char>(d[i]);
            st->body_bytes += n;
            sl_req_body_consume(r, n);
        }
    }

    /* Sends kBig bytes in 64 KiB pieces, pausing whenever the core says the
     * output is above its high-water mark. */
    void PumpBig(sl_req *r, ReqState *st)
    {
        static const std::string chunk(65536, 'x');
        while (st->sent < kBig) {
            size_t n = std::min<uint64_t>(chunk.size(), kBig - st->sent);
            bool more = st->sent + n < kBig;
            int rc = sl_resp_body(r, chunk.data(), n, more);
            st->sent += n;
            if (rc < 0) {
                Record(rc);
                Done(r);
                return;
            }
            if (rc == 1) {
                std::lock_guard<std::mutex> lk(mu);
                blocked++;
                cv.notify_all();
                return;
            }
        }
        Done(r);
    }
};

/* ---- the server under test --------------------------------------------- */

struct Options {
    enum sl_listener_kind kind = SL_LISTENER_TCP;
    bool ipv6 = false;
    bool external_loop = false;
    std::string unix_path;
    int mode = -1;
    std::string access_log;
    uint32_t header_ms = 5000, keep_alive_ms = 5000, body_ms = 5000, write_ms = 5000;
    uint32_t app_ms = 0;
    uint64_t max_body = 8u << 20;
    uint32_t max_connections = 0;
    uint32_t max_keepalive_requests = 0;
};

class Server : public sl_testing::TestServer
{
  public:
    explicit Server(const Options &o)
        : TestServer(o.kind == SL_LISTENER_UNIX ? Addr::kUnix
                     : o.ipv6                   ? Addr::kIpv6
                                                : Addr::kIpv4,
                     o.unix_path),
          opt(o)
    {
        lc.mode = o.mode;
        lc.limits.max_body = o.max_body;
        lc.limits.max_connections = o.max_connections;
        lc.limits.max_keepalive_requests = o.max_keepalive_requests;
        lc.timeouts = {o.header_ms, o.keep_alive_ms, o.body_ms, o.write_ms,
                       1000,        o.app_ms,        10000,     0};
        cfg.http.server_header = "saltare-test";
        cfg.log.access = opt.access_log.empty() ? nullptr : opt.access_log.c_str();
        if (!Open(&app.ops, &app))
            return;
        app.w = w;
        cmd_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (opt.external_loop)
            Start([this] { ExternalLoop(); });
        else
            Start();
    }

    ~Server() override
    {
        Close(); /* while app and cmd_fd (the external loop polls it) live */
        close(cmd_fd);
    }

    /*
     * Runs fn on the worker thread between polls (external loop only) and
     * waits for it. fn may hold references to the caller's stack, so this
     * never returns while fn can still run: after 5 s a command the worker
     * has not picked up is withdrawn (a test failure); one it has picked up
     * is waited for to the end (the test's own timeout bounds that).
     */
    void OnWorker(std::function<void()> fn)
    {
        struct Pending {
            std::mutex m;
            std::condition_variable cv;
            bool done = false;
        };
        auto p = std::make_shared<Pending>();
        uint64_t id;
        {
            std::lock_guard<std::mutex> lk(cmd_mu);
            id = ++cmd_seq;
            cmds.push_back({id, [p, &fn] {
                                fn();
                                std::lock_guard<std::mutex> l2(p->m);
                                p->done = true;
                                p->cv.notify_all();
                            }});
        }
        uint64_t one = 1;
        EXPECT_EQ(write(cmd_fd, &one, sizeof(one)), 8);
        std::unique_lock<std::mutex> lk(p->m);
        if (p->cv.wait_for(lk, 5s, [&] { return p->done; }))
            return;
        lk.unlock();
        if (Withdraw(id)) {
            ADD_FAILURE() << "the worker did not run the command within 5 s";
            return;
        }
        lk.lock();
        p->cv.wait(lk, [&] { return p->done; });
    }

    sl_worker_stats Stats()
    {
        sl_worker_stats s{};
        OnWorker([&] { sl_worker_read_stats(w, &s); });
        return s;
    }

    Options opt;
    App app;

  private:
    void ExternalLoop()
    {
        while (!sl_worker_done(w)) {
            pollfd p[2] = {{sl_worker_fd(w), POLLIN, 0}, {cmd_fd, POLLIN, 0}};
            poll(p, 2, sl_worker_next_timer_ms(w));
            if (p[1].revents) {
                uint64_t v;
                (void)!read(cmd_fd, &v, sizeof(v));
                std::deque<Cmd> todo;
                {
                    std::lock_guard<std::mutex> lk(cmd_mu);
                    todo.swap(cmds);
                }
                for (auto &c : todo)
                    c.fn();
            }
            while (sl_worker_poll(w, 64) == 1) {
            }
        }
    }

    /* True when command `id` was still queued (it will never run now). */
    bool Withdraw(uint64_t id)
    {
        std::lock_guard<std::mutex> lk(cmd_mu);
        for (auto it = cmds.begin(); it != cmds.end(); ++it) {
            if (it->id == id) {
                cmds.erase(it);
                return true;
            }
        }
        return false;
    }

    struct Cmd {
        uint64_t id;
        std::function<void()> fn;
    };
    int cmd_fd = -1;
    std::mutex cmd_mu;
    uint64_t cmd_seq = 0; /* guarded by cmd_mu */
    std::deque<Cmd> cmds; /* guarded by cmd_mu */
};

/* ---- a small blocking HTTP client --------------------------------------- */

struct Response {
    int status = 0;
    std::map<std::string, std::string> headers; /* lower-case names */
    std::string body;
    std::map<std::string, std::string> trailers;
    bool Has(const std::string &n) const
    {
        return headers.count(n) > 0;
    }
    std::string Get(const std::string &n) const
    {
        auto it = headers.find(n);
        return it == headers.end() ? "" : it->second;
    }
};

std::string Lower(std::string s)
{
    for (char &c : s)
        c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    return s;
}

class Client
{
  public:
    explicit Client(const Server &s)
    {
        if (s.opt.kind == SL_LISTENER_UNIX) {
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            strncpy(a.sun_path, s.opt.unix_path.c_str(), sizeof(a.sun_path) - 1);
            connected = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
        } else if (s.opt.ipv6) {
            fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_addr = in6addr_loopback;
            a.sin6_port = htons(static_cast<uint16_t>(s.port));
            connected = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
        } else {
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(static_cast<uint16_t>(s.port));
            connected = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
        }
        SetTimeout(5000);
    }
    ~Client()
    {
        if (fd >= 0)
            close(fd);
    }

    void SetTimeout(int ms)
    {
        timeval tv{ms / 1000, (ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }

    bool Send(const std::string &s)
    {
        size_t off = 0;
        while (off < s.size()) {
            ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0)
                return false;
            off += static_cast<size_t>(n);
        }
        return true;
    }

    /* Reads until `n` buffered bytes are available; false on EOF/timeout. */
    bool Fill(size_t n)
    {
        while (buf.size() < n) {
            char tmp[65536];
            ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
            if (k <= 0)
                return false;
            buf.append(tmp, static_cast<size_t>(k));
        }
        return true;
    }

    bool Line(std::string &out)
    {
        size_t pos;
        while ((pos = buf.find("\r\n")) == std::string::npos) {
            size_t before = buf.size();
            if (!Fill(before + 1))
                return false;
        }
        out = buf.substr(0, pos);
        buf.erase(0, pos + 2);
        return true;
    }

    bool Take(size_t n, std::string &out)
    {
        if (!Fill(n))
            return false;
        out.append(buf, 0, n);
        buf.erase(0, n);
        return true;
    }

    /* Reads one response; `head` for a HEAD request (no body). */
    bool Read(Response &r, bool head = false)
    {
        std::string line;
        r = Response();
        if (!Line(line) || line.compare(0, 9, "HTTP/1.1 ") != 0)
            return false;
        r.status = std::stoi(line.substr(9, 3));
        while (Line(line) && !line.empty()) {
            size_t colon = line.find(':');
            std::string v = line.substr(colon + 1);
            v.erase(0, v.find_first_not_of(' '));
            r.headers[Lower(line.substr(0, colon))] = v;
        }
        if (head || r.status == 204 || r.status == 304 || r.status < 200)
            return true;
        if (r.Has("content-length"))
            return Take(std::stoul(r.Get("content-length")), r.body);
        if (r.Get("transfer-encoding") == "chunked") {
            for (;;) {
                if (!Line(line))
                    return false;
                size_t n = std::stoul(line, nullptr, 16);
                if (n == 0)
                    break;
                if (!Take(n, r.body) || !Line(line))
                    return false;
            }
            while (Line(line) && !line.empty()) {
                size_t colon = line.find(':');
                std::string v = line.substr(colon + 1);
                v.erase(0, v.find_first_not_of(' '));
                r.trailers[Lower(line.substr(0, colon))] = v;
            }
            return true;
        }
        /* Close-delimited. */
        while (Fill(buf.size() + 1)) {
        }
        r.body = buf;
        buf.clear();
        return true;
    }

    /* True when the server closes (EOF or reset) within `ms`. */
    bool ClosedWithin(int ms)
    {
        SetTimeout(ms);
        auto until = Clock::now() + std::chrono::milliseconds(ms);
        char tmp[4096];
        while (Clock::now() < until) {
            ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
            if (k == 0 || (k < 0 && errno == ECONNRESET))
                return true;
            if (k < 0)
                return false; /* timeout */
        }
        return false;
    }

    int fd = -1;
    bool connected = false;
    std::string buf;
};

std::string Get(const std::string &path, const std::string &extra = "")
{
    return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

bool Roundtrip(Client &c, const std::string &req, Response &r, bool head = false)
{
    return c.Send(req) && c.Read(r, head);
}

/* Waits up to 5 s for any of `events` on fd; true when they came. */
bool PollFor(int fd, short events)
{
    pollfd p = {fd, events, 0};
    return poll(&p, 1, 5000) == 1 && (p.revents & events);
}

/* This process's end of the loopback connection whose other end is fd
 * (the worker's socket for a Client), or -1. */
int PeerFd(int fd)
{
    sockaddr_storage want{}, got{};
    socklen_t wlen = sizeof(want);
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&want), &wlen) < 0)
        return -1;
    for (int i = 0; i < 4096; i++) {
        socklen_t glen = sizeof(got);
        if (i != fd && getpeername(i, reinterpret_cast<sockaddr *>(&got), &glen) == 0 &&
            glen == wlen && memcmp(&got, &want, wlen) == 0)
            return i;
    }
    return -1;
}

/* Whether this machine can bind the IPv6 loopback at all (probed once):
 * only then is a failing IPv6 listener a skip rather than a failure. */
bool HaveIPv6Loopback()
{
    static const bool have = [] {
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        bool ok = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
        close(fd);
        return ok;
    }();
    return have;
}

#define START_SERVER(s) ASSERT_TRUE((s).ok()) << strerror(errno);

/* ---- responses ---------------------------------------------------------- */

TEST(Server, AnswersHelloWithContentLengthDateAndServer)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello world");
    EXPECT_EQ(r.Get("content-length"), "11");
    EXPECT_EQ(r.Get("server"), "saltare-test");
    EXPECT_EQ(r.Get("date").size(), 29u);
    EXPECT_FALSE(r.Has("connection"));
    EXPECT_FALSE(r.Has("transfer-encoding"));
}

TEST(Server, AppServerHeaderReplacesTheConfiguredOne)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/server"), r));
    EXPECT_EQ(r.Get("server"), "custom");
}

TEST(Server, SendsChunkedBodyWhenNoLengthIsDeclared)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/chunked"), r));
    EXPECT_EQ(r.Get("transfer-encoding"), "chunked");
    EXPECT_EQ(r.body, "abcdefg");
    /* Still usable afterwards: the chunked framing ended cleanly. */
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    EXPECT_EQ(r.body, "hello world");
}

TEST(Server, Http10GetsACloseDelimitedBody)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, "GET /chunked HTTP/1.0\r\n\r\n", r));
    EXPECT_FALSE(r.Has("transfer-encoding"));
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_EQ(r.body, "abcdefg");
}

TEST(Server, Http10KeepAliveIsHonoured)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r));
    EXPECT_EQ(r.Get("connection"), "keep-alive");
    ASSERT_TRUE(Roundtrip(c, "GET /hello HTTP/1.0\r\n\r\n", r));
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, ServesSeveralRequestsOnOneKeepAliveConnection)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    for (int i = 0; i < 5; i++) {
        Response r;
        ASSERT_TRUE(Roundtrip(c, Get("/p/" + std::to_string(i)), r)) << i;
        EXPECT_EQ(r.body, "GET /p/" + std::to_string(i));
    }
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.requests, 5);
}

TEST(Server, AnswersPipelinedRequestsInOrder)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    std::string all;
    /* 200: more than one round's step budget for a connection. */
    for (int i = 0; i < 200; i++)
        all += Get("/p/" + std::to_string(i));
    all += "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + Get("/p/last");
    ASSERT_TRUE(c.Send(all));
    for (int i = 0; i < 200; i++) {
        Response r;
        ASSERT_TRUE(c.Read(r)) << i;
        EXPECT_EQ(r.body, "GET /p/" + std::to_string(i));
    }
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body.rfind("bytes=3 ", 0), 0u) << r.body;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "GET /p/last");
}

TEST(Server, HeadResponseHasHeadersButNoBody)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n", r, true));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Get("content-length"), "11");
    /* If body bytes had been sent they would now be read as a status line. */
    ASSERT_TRUE(Roundtrip(c, Get("/p/after"), r));
    EXPECT_EQ(r.body, "GET /p/after");
}

TEST(Server, NoContentResponseHasNoBodyAndNoFraming)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/nocontent"), r));
    EXPECT_EQ(r.status, 204);
    EXPECT_FALSE(r.Has("content-length"));
    EXPECT_FALSE(r.Has("transfer-encoding"));
    ASSERT_TRUE(Roundtrip(c, Get("/p/after"), r));
    EXPECT_EQ(r.body, "GET /p/after");
}

TEST(Server, TrailersFollowAChunkedBody)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/trailers2"), r));
    EXPECT_EQ(r.Get("transfer-encoding"), "chunked");
    EXPECT_EQ(r.body, "data");
    EXPECT_EQ(r.trailers["x-sum"], "42");
    ASSERT_TRUE(Roundtrip(c, Get("/trailers"), r));
    EXPECT_EQ(r.body, "data");
}

TEST(Server, DeclaredContentLengthIsEnforced)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/overrun"), r));
    EXPECT_EQ(r.body, "01234");
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.rcs.size() == 2; }));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs, (std::vector<int>{-EPROTO, 0}));
}

TEST(Server, ShortBodyClosesTheConnection)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/short")));
    std::string line;
    ASSERT_TRUE(c.Line(line));
    EXPECT_EQ(line, "HTTP/1.1 200 OK");
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, MaxKeepaliveRequestsClosesAfterTheLastAllowed)
{
    Options o;
    o.max_keepalive_requests = 2;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    EXPECT_FALSE(r.Has("connection"));
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, ConnectionCloseFromTheClientIsHonoured)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello", "Connection: close\r\n"), r));
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(2000));
}

/* ---- errors --------------------------------------------------------------- */

TEST(Server, MalformedRequestGets400AndTheConnectionCloses)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", r));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_EQ(r.body, "Bad Request\n");
    EXPECT_TRUE(c.ClosedWithin(2000));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.requests, 0);
}

TEST(Server, UnsupportedVersionGets505)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", r));
    EXPECT_EQ(r.status, 505);
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, OversizedHeadGets431)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello", "X-Big: " + std::string(9000, 'a') + "\r\n"), r));
    EXPECT_EQ(r.status, 431);
    EXPECT_EQ(r.Get("connection"), "close");
}

TEST(Server, LongTargetGets414)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/" + std::string(8500, 'u')), r));
    EXPECT_EQ(r.status, 414);
    EXPECT_EQ(r.Get("connection"), "close");
}

TEST(Server, DeclaredBodyOverMaxBodyGets413BeforeTheAppSeesIt)
{
    Options o;
    o.max_body = 1000;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(
        c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
        r));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(3000));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.requests, 0);
}

TEST(Server, ChunkedBodyCrossingMaxBodyGets413)
{
    Options o;
    o.max_body = 1000;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    /* First chunk, then the rest once the app waits for more: the limit is
     * crossed while the app streams the body. */
    std::string chunk = "1f4\r\n" + std::string(500, 'z') + "\r\n";
    ASSERT_TRUE(
        c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.requests == 1; }));
    std::string rest;
    for (int i = 0; i < 4; i++)
        rest += chunk;
    Response r;
    ASSERT_TRUE(Roundtrip(c, rest + "0\r\n\r\n", r));
    EXPECT_EQ(r.status, 413);
    EXPECT_TRUE(c.ClosedWithin(3000));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.rcs.empty(); }));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs[0], -EMSGSIZE);
}

TEST(Server, BadAppHeaderIsRejectedWithEinvalAndNothingIsWritten)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/badheader"), r));
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_FALSE(r.Has("injected"));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs, (std::vector<int>{-EINVAL, -EINVAL}));
}

TEST(Server, AppErrorBecomes500WithConnectionClose)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/error"), r));
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, RequestReleasedWithoutAnswerGets500)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/forget"), r));
    EXPECT_EQ(r.status, 500);
}

/* ---- request bodies ------------------------------------------------------- */

TEST(Server, ExpectContinueGetsAnInterimResponseWhenTheAppReads)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: 10\r\n\r\n"));
    std::string line;
    ASSERT_TRUE(c.Line(line));
    EXPECT_EQ(line, "HTTP/1.1 100 Continue");
    ASSERT_TRUE(c.Line(line));
    EXPECT_EQ(line, "");
    ASSERT_TRUE(c.Send("0123456789"));
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind("bytes=10 ", 0), 0u) << r.body;
}

TEST(Server, NoInterimResponseWhenTheAppAnswersWithoutReading)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c,
                          "POST /hello HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                          "Content-Length: 10\r\n\r\n",
                          r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello world");
    /* The client may now send the body or skip it: whatever it sends next
     * is ambiguous, so the connection ends here. */
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(3000));
}

TEST(Server, WithheldBodyIsNeverReadAsTheNextRequest)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    /* A client that skips the body after the final response and reuses
     * the connection: had the server kept it, the first 10 bytes of the
     * next request would have been dropped as body (a desync). */
    ASSERT_TRUE(Roundtrip(c,
                          "POST /hello HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                          "Content-Length: 10\r\n\r\n",
                          r));
    c.Send(Get("/p/smuggled"));
    EXPECT_FALSE(c.Read(r)) << r.status << " " << r.body;
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.seen_paths, (std::vector<std::string>{"/hello"}));
}

TEST(Server, BodySentWithoutWaitingForContinueIsDroppedAndTheConnectionKept)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c,
                          "POST /hello HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                          "Content-Length: 10\r\n\r\n0123456789",
                          r));
    EXPECT_EQ(r.body, "hello world");
    EXPECT_FALSE(r.Has("connection"));
    ASSERT_TRUE(Roundtrip(c, Get("/p/next"), r));
    EXPECT_EQ(r.body, "GET /p/next");
}

TEST(Server, LargeUnreadBodyClosesTheConnectionAfterTheResponse)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(
        Roundtrip(c, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", r));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(c.ClosedWithin(3000));
}

uint32_t Checksum(const std::string &s)
{
    uint32_t sum = 0;
    for (unsigned char ch : s)
        sum = sum * 31 + ch;
    return sum;
}

std::string Pattern(size_t n)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++)
        s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
    return s;
}

TEST(Server, StreamsAContentLengthBodyInChunks)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    std::string body = Pattern(1 << 20);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n"));
    for (size_t off = 0; off < body.size(); off += 100000)
        ASSERT_TRUE(c.Send(body.substr(off, 100000)));
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "bytes=1048576 sum=" + std::to_string(Checksum(body)));
}

TEST(Server, StreamsAChunkedBody)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    std::string body = Pattern(300000);
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t off = 0; off < body.size(); off += 7777) {
        std::string piece = body.substr(off, 7777);
        char hex[16];
        snprintf(hex, sizeof(hex), "%zx", piece.size());
        req += std::string(hex) + ";ext=1\r\n" + piece + "\r\n";
    }
    req += "0\r\nX-Trailer: t\r\n\r\n" + Get("/p/after");
    ASSERT_TRUE(c.Send(req));
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "bytes=300000 sum=" + std::to_string(Checksum(body)));
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "GET /p/after");
}

TEST(Server, ReadingPausesWhileTheAppDoesNotConsume)
{
    Options o;
    o.external_loop = true;
    o.max_body = 64u << 20;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    const size_t total = 16u << 20;
    int sndbuf = 65536;
    setsockopt(c.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    ASSERT_TRUE(c.Send(
        "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n"));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    /* Push until the socket stays full for 2 s: the server has stopped
     * reading. A server that kept reading would drain it long before. */
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    std::string chunk(65536, 'q');
    size_t sent = 0;
    while (sent < total) {
        ssize_t n = send(c.fd, chunk.data(), std::min(chunk.size(), total - sent), MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << strerror(errno);
        pollfd p = {c.fd, POLLOUT, 0};
        if (poll(&p, 1, 2000) == 0)
            break;
    }
    EXPECT_LT(sent, total / 4) << "the server read a body nobody asked for";
    sl_worker_stats st = s.Stats();
    EXPECT_LE(st.bufs_in_use, 1u); /* one buffer, however large the body */
    /* Now the app consumes: reading resumes. */
    sl_req *r = s.app.held.front();
    s.OnWorker([&] { s.app.PumpBody(r, static_cast<ReqState *>(sl_req_data(r))); });
    fcntl(c.fd, F_SETFL, 0);
    while (sent < total) {
        size_t n = std::min(chunk.size(), total - sent);
        ASSERT_TRUE(c.Send(chunk.substr(0, n)));
        sent += n;
    }
    Response resp;
    ASSERT_TRUE(c.Read(resp));
    EXPECT_EQ(resp.body.rfind("bytes=" + std::to_string(total) + " ", 0), 0u) << resp.body;
}

/* ---- timeouts and limits ----------------------------------------------- */

TEST(Server, HeaderTimeoutReapsASlowloris)
{
    Options o;
    o.header_ms = 300;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    auto t0 = Clock::now();
    ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\n"));
    /* Trickle a header byte every 50 ms: each byte must not reset the bound.
     * The partial head is answered 408, then the connection closes. */
    bool answered = false;
    for (int i = 0; i < 40 && !answered; i++) {
        std::this_thread::sleep_for(50ms);
        struct pollfd pfd = {c.fd, POLLIN, 0};
        answered = poll(&pfd, 1, 0) == 1 || !c.Send("X");
    }
    EXPECT_LT(Clock::now() - t0, 1800ms);
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(408, r.status);
    EXPECT_EQ("close", r.Get("connection"));
    EXPECT_TRUE(c.ClosedWithin(3000));
}

TEST(Server, IdleFreshConnectionIsReapedByTheHeaderTimeout)
{
    Options o;
    o.header_ms = 200;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, KeepAliveTimeoutClosesAnIdleConnection)
{
    Options o;
    o.keep_alive_ms = 200;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    auto t0 = Clock::now();
    EXPECT_TRUE(c.ClosedWithin(2000));
    EXPECT_GE(Clock::now() - t0, 150ms);
}

TEST(Server, BodyTimeoutFailsTheWaitingRequest)
{
    Options o;
    o.body_ms = 200;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
    EXPECT_TRUE(c.ClosedWithin(2000));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.rcs.empty(); }));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs[0], -ETIMEDOUT);
}

TEST(Server, ConnectionsOverTheLimitAreClosedAtOnce)
{
    Options o;
    o.max_connections = 2;
    Server s(o);
    START_SERVER(s);
    Client a(s), b(s);
    Response r;
    ASSERT_TRUE(Roundtrip(a, Get("/hello"), r));
    ASSERT_TRUE(Roundtrip(b, Get("/hello"), r));
    Client c(s);
    EXPECT_TRUE(c.ClosedWithin(2000));
    /* A freed slot is usable again. */
    close(a.fd);
    a.fd = -1;
    auto until = Clock::now() + 3s;
    bool served = false;
    while (!served && Clock::now() < until) {
        Client d(s);
        served = Roundtrip(d, Get("/hello"), r);
    }
    EXPECT_TRUE(served);
}

/* ---- disconnects, backpressure, drain ----------------------------------- */

TEST(Server, DisconnectEventReachesTheAppAndLaterCallsGetEpipe)
{
    Server s(Options{});
    START_SERVER(s);
    {
        Client c(s);
        ASSERT_TRUE(c.Send(Get("/hold")));
        ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
        linger lg{1, 0}; /* close with a reset: the client is gone for good */
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 1; }));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs, (std::vector<int>{-EPIPE}));
}

TEST(Server, HalfCloseWhileTheAppWorksIsADisconnect)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    shutdown(c.fd, SHUT_WR); /* `printf 'GET ...' | nc -N`, or a client that left */
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 1; }));
    EXPECT_TRUE(c.ClosedWithin(2000));
    sl_worker_stats st = s.Stats();
    EXPECT_EQ(st.conns, 0u);
    EXPECT_EQ(st.client_aborts, 1u);
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs, (std::vector<int>{-EPIPE}));
}

TEST(Server, HalfCloseAfterPipelinedRequestsAnswersEveryOne)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/p/1") +
                       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
                       "abc" +
                       Get("/p/3")));
    shutdown(c.fd, SHUT_WR);
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "GET /p/1");
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body.rfind("bytes=3 ", 0), 0u) << r.body;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "GET /p/3");
    EXPECT_TRUE(c.ClosedWithin(2000));
}

TEST(Server, WriteTimeoutClosesAConnectionWhoseClientStopsReading)
{
    Options o;
    o.write_ms = 300;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    int rcvbuf = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    auto t0 = Clock::now();
    ASSERT_TRUE(c.Send(Get("/big")));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.blocked > 0; }));
    /* The client never reads: the write timer, not the client, ends it. */
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 1; }, 3000ms));
    EXPECT_GE(Clock::now() - t0, 250ms);
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.rcs, (std::vector<int>{-EPIPE}));
}

TEST(Server, WritingToAVanishedClientReturnsEpipeWithoutSigpipe)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    sl_req *r = s.app.held.front();
    s.app.held.clear();
    int rc1 = 0, rc2 = 0;
    /* All on the worker thread, between polls, so the core has not yet
     * seen the FIN: the first write draws an RST, the second hits EPIPE,
     * which would raise SIGPIPE and kill this process with plain writev. */
    int server_fd = PeerFd(c.fd);
    ASSERT_GE(server_fd, 0);
    bool fin_seen = false, rst_seen = false;
    s.OnWorker([&] {
        close(c.fd);
        c.fd = -1;
        fin_seen = PollFor(server_fd, POLLRDHUP);
        App::Start(r, 200, {});
        rc1 = sl_resp_body(r, "first", 5, true);
        rst_seen = PollFor(server_fd, POLLERR | POLLHUP);
        rc2 = sl_resp_body(r, "second", 6, true);
        App::Done(r);
    });
    EXPECT_TRUE(fin_seen);
    EXPECT_TRUE(rst_seen);
    EXPECT_EQ(rc1, 0);
    EXPECT_EQ(rc2, -EPIPE);
    Client again(s);
    Response resp;
    ASSERT_TRUE(Roundtrip(again, Get("/hello"), resp));
}

TEST(Server, BackpressurePausesTheAppUntilTheClientReads)
{
    Server s(Options{});
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/big")));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.blocked > 0; }));
    {
        std::lock_guard<std::mutex> lk(s.app.mu);
        EXPECT_EQ(s.app.drains, 0);
    }
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body.size(), App::kBig);
    EXPECT_EQ(r.body.find_first_not_of('x'), std::string::npos);
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_GE(s.app.drains, 1);
    EXPECT_EQ(s.app.drains, s.app.blocked);
}

TEST(Server, DrainFinishesTheInFlightRequestAndClosesIdleOnes)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client idle(s), busy(s);
    Response r;
    ASSERT_TRUE(Roundtrip(idle, Get("/hello"), r));
    ASSERT_TRUE(busy.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    sl_worker_signal_drain(s.w);
    EXPECT_TRUE(idle.ClosedWithin(2000));
    bool draining = false;
    s.OnWorker([&] { draining = sl_worker_draining(s.w) && !sl_worker_done(s.w); });
    EXPECT_TRUE(draining);
    /* No new connection is accepted any more (the listening socket itself
     * stays open: closing it is the master's job). */
    uint64_t accepted = s.Stats().accepted;
    Client late(s);
    ASSERT_TRUE(late.Send(Get("/hello")));
    /* Once the connection waits in the accept queue, a full worker poll
     * would accept it if the worker still listened; it must stay queued. */
    ASSERT_TRUE(PollFor(s.fd, POLLIN));
    s.OnWorker([&] {
        while (sl_worker_poll(s.w, 64) == 1) {
        }
    });
    EXPECT_EQ(s.Stats().accepted, accepted);
    EXPECT_TRUE(PollFor(s.fd, POLLIN)) << "someone accepted the late connection";
    sl_req *req = s.app.held.front();
    s.OnWorker([&] {
        App::Respond(req, 200, "finished");
        App::Done(req);
    });
    ASSERT_TRUE(busy.Read(r));
    EXPECT_EQ(r.body, "finished");
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(busy.ClosedWithin(2000));
    close(busy.fd); /* ends the lingering close */
    busy.fd = -1;
    s.Stop(); /* the worker loop ends by itself once the last conn closed */
}

TEST(Server, SecondDrainSignalRequestsAbort)
{
    Server s(Options{});
    START_SERVER(s);
    EXPECT_FALSE(sl_worker_abort_requested(s.w));
    sl_worker_signal_drain(s.w);
    sl_worker_signal_drain(s.w);
    EXPECT_TRUE(sl_worker_abort_requested(s.w));
}

/* ---- listeners ----------------------------------------------------------- */

TEST(Server, ServesOverAUnixSocket)
{
    Options o;
    o.kind = SL_LISTENER_UNIX;
    /* /tmp, not TEST_TMPDIR: sun_path holds only 108 bytes. */
    o.unix_path = "/tmp/sl-test-" + std::to_string(getpid()) + ".sock";
    o.mode = 0600;
    {
        /* A stale socket file from an earlier run is replaced. */
        int stale = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        strncpy(a.sun_path, o.unix_path.c_str(), sizeof(a.sun_path) - 1);
        ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
        close(stale);
    }
    {
        Server s(o);
        START_SERVER(s);
        struct stat st;
        ASSERT_EQ(stat(o.unix_path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        Client c(s);
        ASSERT_TRUE(c.connected);
        Response r;
        ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
        EXPECT_EQ(r.body, "hello world");
    }
    EXPECT_NE(access(o.unix_path.c_str(), F_OK), 0) << "close_all leaves the socket file";
}

TEST(Server, ServesOverIPv6)
{
    if (!HaveIPv6Loopback())
        GTEST_SKIP() << "this machine has no IPv6 loopback";
    Options o;
    o.ipv6 = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.connected);
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    EXPECT_EQ(r.body, "hello world");
}

TEST(Listen, RefusesToReplaceARegularFile)
{
    std::string path = "/tmp/sl-file-" + std::to_string(getpid()); /* sun_path is short */
    {
        std::ofstream(path) << "keep me";
    }
    sl_listener_config lc{};
    lc.kind = SL_LISTENER_UNIX;
    lc.path = path.c_str();
    lc.name = path.c_str();
    lc.mode = -1;
    EXPECT_EQ(sl_listen_open(&lc), -EEXIST);
    EXPECT_EQ(access(path.c_str(), F_OK), 0);
    unlink(path.c_str());
}

/* ---- transport ----------------------------------------------------------- */

TEST(Transport, PlainSocketsFollowTheTransportContract)
{
    const sl_transport *t = &sl_transport_plain;
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    char buf[16];
    EXPECT_EQ(t->read(sv[0], nullptr, buf, sizeof(buf)), -EAGAIN);
    iovec iov[2] = {{const_cast<char *>("ab"), 2}, {const_cast<char *>("cde"), 3}};
    EXPECT_EQ(t->writev(sv[1], nullptr, iov, 2), 5);
    EXPECT_EQ(t->read(sv[0], nullptr, buf, sizeof(buf)), 5);
    EXPECT_EQ(std::string(buf, 5), "abcde");
    EXPECT_EQ(t->shutdown(sv[1], nullptr), 0); /* the peer sees the end... */
    EXPECT_EQ(t->read(sv[0], nullptr, buf, sizeof(buf)), 0);
    EXPECT_EQ(t->writev(sv[0], nullptr, iov, 1), 2); /* ...and can still answer */
    EXPECT_EQ(t->read(sv[1], nullptr, buf, sizeof(buf)), 2);
    t->close(sv[1], nullptr);
    /* A vanished peer is -EPIPE, not a SIGPIPE that would kill the test. */
    EXPECT_EQ(t->writev(sv[0], nullptr, iov, 2), -EPIPE);
    t->close(sv[0], nullptr);
    EXPECT_EQ(fcntl(sv[0], F_GETFD), -1); /* closed */
}

/* ---- memory ------------------------------------------------------------- */

TEST(Server, IdleKeepAliveConnectionsHoldNoBuffer)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    std::vector<std::unique_ptr<Client>> cs;
    for (int i = 0; i < 50; i++) {
        cs.emplace_back(new Client(s));
        Response r;
        ASSERT_TRUE(Roundtrip(*cs.back(), Get("/hello"), r));
    }
    sl_worker_stats st = s.Stats();
    EXPECT_EQ(st.conns, 50u);
    EXPECT_EQ(st.bufs_in_use, 0u);
    EXPECT_LE(st.conn_bytes / st.conns, 512u);
    EXPECT_EQ(st.requests, 50u);
}

/* ---- access log ------------------------------------------------------------ */

TEST(AccessLog, EscapesEveryFieldIntoOneJsonLine)
{
    char buf[SL_ACCESS_LINE_MAX];
    std::string path = "/a\"b\\c\n\x01\xff\xc3\xa9";
    sl_access_entry e{};
    e.time_ms = 1700000000123;
    e.client = "127.0.0.1:5555";
    e.method = "GET";
    e.method_len = 3;
    e.path = path.data();
    e.path_len = path.size();
    e.status = 200;
    e.bytes = 11;
    e.latency_us = 42;
    size_t n = sl_access_format(buf, sizeof(buf), &e, nullptr);
    std::string line(buf, n);
    EXPECT_EQ(line, "{\"time\":\"2023-11-14T22:13:20.123Z\",\"client\":\"127.0.0.1:5555\","
                    "\"method\":\"GET\",\"path\":\"/a\\\"b\\\\c\\u000a\\u0001\\u00ff\xc3\xa9\","
                    "\"query\":null,\"status\":200,\"bytes_in\":0,\"bytes_out\":11,"
                    "\"duration\":0.000042,\"user_agent\":null,\"referer\":null,"
                    "\"listener\":null,\"tls\":null,\"pid\":0}\n");
}

TEST(AccessLog, TruncatesHugeFieldsToFitTheLine)
{
    char buf[SL_ACCESS_LINE_MAX];
    std::string path(100000, '"');
    std::string ua(100000, 'u');
    sl_access_entry e{};
    e.client = "unix";
    e.method = "GET";
    e.method_len = 3;
    e.path = path.data();
    e.path_len = path.size();
    e.user_agent = ua.data();
    e.user_agent_len = ua.size();
    size_t n = sl_access_format(buf, sizeof(buf), &e, nullptr);
    EXPECT_LT(n, sizeof(buf));
    EXPECT_EQ(buf[n - 1], '\n');
    EXPECT_EQ(buf[n - 2], '}');
}

TEST(AccessLog, WritesOneLinePerRequest)
{
    Options o;
    const char *tmp = getenv("TEST_TMPDIR");
    o.access_log = std::string(tmp ? tmp : "/tmp") + "/access-" + std::to_string(getpid()) + ".log";
    unlink(o.access_log.c_str());
    {
        Server s(o);
        START_SERVER(s);
        Client c(s);
        Response r;
        ASSERT_TRUE(Roundtrip(c, Get("/hello", "User-Agent: tester/1\r\n"), r));
        ASSERT_TRUE(Roundtrip(c, "GET /p/x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", r));
    }
    std::ifstream f(o.access_log);
    std::string l1, l2, l3;
    ASSERT_TRUE(std::getline(f, l1));
    ASSERT_TRUE(std::getline(f, l2));
    EXPECT_FALSE(std::getline(f, l3));
    EXPECT_NE(l1.find("\"method\":\"GET\",\"path\":\"/hello\",\"query\":null,\"status\":200,"
                      "\"bytes_in\":0,\"bytes_out\":11,"),
              std::string::npos)
        << l1;
    EXPECT_NE(l1.find("\"user_agent\":\"tester/1\",\"referer\":null,"), std::string::npos) << l1;
    EXPECT_NE(l1.find("\"client\":\"127.0.0.1:"), std::string::npos) << l1;
    EXPECT_NE(l2.find("\"status\":400"), std::string::npos) << l2;
    /* A head the core refused still names what its request line said. */
    EXPECT_NE(l2.find("\"method\":\"GET\",\"path\":\"/p/x\",\"query\":null,"), std::string::npos)
        << l2;
    unlink(o.access_log.c_str());
}

/* ---- write batching (the Python bridge turns it on) ------------------------ */

/* True when bytes from the server wait on the client socket. */
bool Arrived(const Client &c)
{
    char b;
    return recv(c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

TEST(Server, BatchedResponsesLeaveTogetherOnTheFlush)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client a(s), b(s);
    ASSERT_TRUE(a.Send(Get("/hold")));
    ASSERT_TRUE(b.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.held.size() == 2; }));
    bool held_back = false, arrived_early = true, pending_after = true;
    s.OnWorker([&] {
        sl_worker_set_batching(s.w, true);
        for (const char *body : {"one", "two"}) {
            sl_req *r = s.app.held.front();
            s.app.held.pop_front();
            App::Respond(r, 200, body);
            App::Done(r);
        }
        held_back = sl_worker_flush_pending(s.w) && sl_worker_next_timer_ms(s.w) == 0;
        arrived_early = Arrived(a) || Arrived(b);
        sl_worker_flush(s.w);
        pending_after = sl_worker_flush_pending(s.w);
    });
    EXPECT_TRUE(held_back);
    EXPECT_FALSE(arrived_early);
    EXPECT_FALSE(pending_after);
    Response ra, rb;
    ASSERT_TRUE(a.Read(ra));
    ASSERT_TRUE(b.Read(rb));
    EXPECT_EQ(ra.status, 200);
    EXPECT_EQ(ra.body + rb.body, "onetwo");
    ASSERT_TRUE(Roundtrip(a, Get("/hello"), ra)); /* kept alive */
}

TEST(Server, TheNextPollFlushesWhatBatchingHeld)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    s.OnWorker([&] {
        sl_worker_set_batching(s.w, true);
        sl_req *r = s.app.held.front();
        s.app.held.pop_front();
        App::Respond(r, 200, "later");
        App::Done(r);
    });
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, "later");
}

TEST(Server, LargeWritesAreNotBatched)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    const std::string big(20000, 'x');
    bool arrived = false, pending = true;
    s.OnWorker([&] {
        sl_worker_set_batching(s.w, true);
        sl_req *r = s.app.held.front();
        s.app.held.pop_front();
        App::Respond(r, 200, big);
        App::Done(r);
        arrived = Arrived(c);
        pending = sl_worker_flush_pending(s.w);
    });
    EXPECT_TRUE(arrived);
    EXPECT_FALSE(pending);
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.body, big);
}

/* ---- clients that leave, apps that fail or overrun ------------------------ */

/* Every byte the server sends until it closes (EOF or reset), or until `ms`. */
std::string UntilClosed(Client &c, int ms = 3000)
{
    c.SetTimeout(ms);
    std::string all = c.buf;
    c.buf.clear();
    char tmp[65536];
    for (;;) {
        ssize_t k = recv(c.fd, tmp, sizeof(tmp), 0);
        if (k <= 0)
            return all;
        all.append(tmp, static_cast<size_t>(k));
    }
}

/* Runs fn(r) on the worker between polls for the oldest held request, with
 * write batching on as the Python bridge has it. */
void AnswerHeld(Server &s, const std::function<void(sl_req *)> &fn)
{
    s.OnWorker([&] {
        sl_worker_set_batching(s.w, true);
        sl_req *r = s.app.held.front();
        s.app.held.pop_front();
        fn(r);
    });
}

TEST(Lifecycle, BodyCutShortByTheClientIsNoticedAtOnce)
{
    Options o;
    o.external_loop = true;
    o.body_ms = 60000; /* far away: the EOF, not the timeout, must end it */
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
    shutdown(c.fd, SHUT_WR);
    EXPECT_TRUE(c.ClosedWithin(3000));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 1; }));
    sl_worker_stats st = s.Stats();
    EXPECT_EQ(st.conns, 0u);
    EXPECT_EQ(st.client_aborts, 1u);
}

TEST(Lifecycle, BodyCutShortAfterAPauseIsNoticedAtOnce)
{
    Options o;
    o.external_loop = true;
    o.body_ms = 60000;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n01234"));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.requests == 1; }));
    ASSERT_TRUE(c.Send("56789")); /* the last bytes, then the FIN */
    close(c.fd);
    c.fd = -1;
    /* The app, reading the body, hears of it from its next peek. */
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.rcs == std::vector<int>{-EPIPE}; }));
    sl_worker_stats st = s.Stats();
    EXPECT_EQ(st.conns, 0u);
    EXPECT_EQ(st.client_aborts, 1u);
}

TEST(Lifecycle, AbandonedRequestsGiveBackTheirSlotsAtOnce)
{
    Options o;
    o.external_loop = true;
    o.max_connections = 40;
    Server s(o);
    START_SERVER(s);
    {
        std::vector<std::unique_ptr<Client>> cs;
        for (int i = 0; i < 40; i++) {
            cs.push_back(std::make_unique<Client>(s));
            ASSERT_TRUE(cs.back()->Send(Get("/hold")));
        }
        ASSERT_TRUE(s.app.WaitFor([&] { return s.app.held.size() == 40; }));
    } /* every client closes while the app still works on its request */
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 40; }));
    sl_worker_stats st = s.Stats();
    EXPECT_EQ(st.conns, 0u);
    EXPECT_EQ(st.client_aborts, 40u);
    Client c(s); /* the slots are free again */
    Response r;
    ASSERT_TRUE(Roundtrip(c, Get("/hello"), r));
    EXPECT_EQ(r.body, "hello world");
}

TEST(Lifecycle, BytesHeldByBatchingReachTheClientWhenTheAppFails)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    AnswerHeld(s, [&](sl_req *r) {
        App::Start(r, 200, {});
        sl_resp_body(r, "partial", 7, true);
        sl_resp_error(r, 500); /* the app raised in the same loop turn */
        App::Done(r);
    });
    std::string got = UntilClosed(c);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    /* Its end is the close, without the last chunk: the client sees it cut. */
    EXPECT_EQ(got.substr(got.size() - 12), "7\r\npartial\r\n") << got;
}

TEST(Lifecycle, AnAppThatReturnsMidBodyStillDeliversWhatItSent)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    AnswerHeld(s, [&](sl_req *r) {
        App::Start(r, 200, {{"Content-Length", "10"}});
        sl_resp_body(r, "01234", 5, true);
        App::Done(r); /* released with more_body still true */
    });
    std::string got = UntilClosed(c);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_EQ(got.substr(got.size() - 9), "\r\n\r\n01234") << got;
}

TEST(Lifecycle, OverrunningContentLengthSendsWhatFitsThenCloses)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    int first = 1, second = 0;
    AnswerHeld(s, [&](sl_req *r) {
        App::Start(r, 200, {{"Content-Length", "10"}});
        first = sl_resp_body(r, "01234", 5, true);
        second = sl_resp_body(r, "56789abc", 8, true);
        sl_resp_error(r, 500);
        App::Done(r);
    });
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, -EPROTO);
    std::string got = UntilClosed(c);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_EQ(got.substr(got.size() - 14), "\r\n\r\n0123456789") << got;
}

TEST(Lifecycle, AFailureBeforeAnyBodyByteIsStillA500)
{
    Options o;
    o.external_loop = true;
    Server s(o);
    START_SERVER(s);
    for (int how = 0; how < 3; how++) {
        Client c(s);
        ASSERT_TRUE(c.Send(Get("/hold")));
        ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
        int rc = 0;
        AnswerHeld(s, [&](sl_req *r) {
            App::Start(r, 201, {{"Content-Length", "3"}, {"X-App", "1"}});
            if (how == 0) /* a second start, or a body of the wrong type */
                sl_resp_error(r, 500);
            else if (how == 1) /* a first body longer than declared */
                rc = sl_resp_body(r, "abcdef", 6, false), sl_resp_error(r, 500);
            App::Done(r); /* how == 2: returned after the start alone */
        });
        Response r;
        ASSERT_TRUE(c.Read(r)) << how;
        EXPECT_EQ(r.status, 500) << how;
        EXPECT_FALSE(r.Has("x-app")) << how;
        EXPECT_EQ(r.Get("connection"), "close") << how;
        EXPECT_EQ(rc, how == 1 ? -EPROTO : 0);
        EXPECT_TRUE(c.ClosedWithin(2000));
    }
}

TEST(Lifecycle, AppTimeoutAnswers504AndTellsTheApp)
{
    Options o;
    o.external_loop = true;
    o.app_ms = 200;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    Response r;
    ASSERT_TRUE(c.Read(r));
    EXPECT_EQ(r.status, 504);
    EXPECT_TRUE(c.ClosedWithin(2000));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.cancels == 1; }));
    {
        std::lock_guard<std::mutex> lk(s.app.mu);
        EXPECT_EQ(s.app.rcs, (std::vector<int>{-EPIPE})); /* its late answer is refused */
        EXPECT_EQ(s.app.disconnects, 0);
    }
    EXPECT_EQ(s.Stats().app_timeouts, 1u);
}

TEST(Lifecycle, AppTimeoutAfterPartOfTheResponseDeliversItAndCloses)
{
    Options o;
    o.external_loop = true;
    o.app_ms = 300;
    Server s(o);
    START_SERVER(s);
    Client c(s);
    ASSERT_TRUE(c.Send(Get("/hold")));
    ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    s.OnWorker([&] {
        sl_worker_set_batching(s.w, true);
        sl_req *r = s.app.held.front(); /* stays held: the app works on */
        App::Start(r, 200, {});
        sl_resp_body(r, "part", 4, true);
    });
    std::string got = UntilClosed(c);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_EQ(got.substr(got.size() - 9), "4\r\npart\r\n") << got;
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.cancels == 1; }));
}

TEST(Lifecycle, AppTimeoutStopsAnAppWhoseClientLeft)
{
    Options o;
    o.external_loop = true;
    o.app_ms = 300;
    Server s(o);
    START_SERVER(s);
    {
        Client c(s);
        ASSERT_TRUE(c.Send(Get("/stubborn")));
        ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
    }
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 1; }));
    ASSERT_TRUE(s.app.WaitFor([&] { return s.app.cancels == 1; }));
    sl_worker_stats st = s.Stats();
    EXPECT_EQ(st.app_timeouts, 1u);
    EXPECT_EQ(st.client_aborts, 1u);
}

TEST(Lifecycle, AClientThatLeavesBeforeTheBodyIsLoggedAs499)
{
    Options o;
    o.external_loop = true;
    const char *tmp = getenv("TEST_TMPDIR");
    o.access_log =
        std::string(tmp ? tmp : "/tmp") + "/access499-" + std::to_string(getpid()) + ".log";
    unlink(o.access_log.c_str());
    {
        Server s(o);
        START_SERVER(s);
        {
            Client c(s);
            ASSERT_TRUE(c.Send(Get("/stubborn")));
            ASSERT_TRUE(s.app.WaitFor([&] { return !s.app.held.empty(); }));
            s.OnWorker([&] { App::Start(s.app.held.front(), 200, {}); }); /* no body yet */
        }
        ASSERT_TRUE(s.app.WaitFor([&] { return s.app.disconnects == 1; }));
        s.OnWorker([&] { App::Done(s.app.held.front()); });
    }
    std::ifstream f(o.access_log);
    std::string line;
    ASSERT_TRUE(std::getline(f, line));
    EXPECT_NE(line.find("\"path\":\"/stubborn\",\"query\":null,\"status\":499,"), std::string::npos)
        << line;
    unlink(o.access_log.c_str());
}

} // namespace
