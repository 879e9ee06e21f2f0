// What the core does when the kernel refuses to arm EPOLLOUT for a blocked
// write. Linked with -Wl,--wrap=epoll_ctl (see BUILD.bazel) so the test can
// make EPOLL_CTL_MOD fail; everything else is the real worker on loopback,
// driven by sl_worker_poll on the test's own thread.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "server/listen.h"
#include "server/server.h"

extern "C" {
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

static int mod_calls;
static bool fail_mod;

/* EPOLL_CTL_MOD fails with ENOMEM while fail_mod is set; the rest is real. */
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (op == EPOLL_CTL_MOD) {
        mod_calls++;
        if (fail_mod) {
            errno = ENOMEM;
            return -1;
        }
    }
    return __real_epoll_ctl(epfd, op, fd, ev);
}
}

namespace
{

/* The app answers with more bytes than any socket buffer holds, at once. */
struct BigApp {
    sl_app_ops ops{};
    int rc = 1;
    bool released = false;
    std::string big = std::string(16u << 20, 'x');

    BigApp()
    {
        ops.on_request = [](void *app, sl_req *r) {
            BigApp *a = static_cast<BigApp *>(app);
            std::string cl = std::to_string(a->big.size());
            sl_h1_header h = {"Content-Length", 14, cl.data(), cl.size()};
            sl_resp_start(r, 200, &h, 1, false);
            a->rc = sl_resp_body(r, a->big.data(), a->big.size(), false);
            sl_req_release(r);
            a->released = true;
        };
        ops.on_event = [](void *, sl_req *, sl_req_event) {};
    }
};

TEST(EpollFailure, AWriteThatCannotWaitForEpolloutClosesTheConnection)
{
    sl_listener_config lc{};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memcpy(&lc.addr, &a, sizeof(a));
    lc.addrlen = sizeof(a);
    lc.kind = SL_LISTENER_TCP;
    lc.name = "127.0.0.1:0";
    lc.mode = -1;
    lc.limits.max_body = 1 << 20;
    lc.limits.max_header_bytes = 8192;
    lc.limits.max_headers = 64;
    lc.limits.max_request_target = 8192;
    // no write timeout (the 4th): nothing else would end it
    lc.timeouts = {5000, 5000, 5000, 0, 1000, 0, 10000, 0};
    sl_config cfg{};
    cfg.listeners = &lc;
    cfg.nlisteners = 1;
    cfg.limits = lc.limits;
    cfg.timeouts = lc.timeouts;
    int lfd = sl_listen_open(&lc);
    ASSERT_GE(lfd, 0);
    BigApp app;
    sl_worker *w = sl_worker_new(&cfg, &lfd, &app.ops, &app);
    ASSERT_NE(w, nullptr);

    sockaddr_in bound{};
    socklen_t blen = sizeof(bound);
    getsockname(lfd, reinterpret_cast<sockaddr *>(&bound), &blen);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)); /* and it never reads */
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr *>(&bound), sizeof(bound)), 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(c, req, sizeof(req) - 1, 0), static_cast<ssize_t>(sizeof(req) - 1));

    fail_mod = true;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    sl_worker_stats st{};
    do {
        sl_worker_poll(w, 64);
        sl_worker_read_stats(w, &st);
    } while ((!app.released || st.conns > 0) && std::chrono::steady_clock::now() < until);
    fail_mod = false;

    EXPECT_TRUE(app.released);
    EXPECT_GE(mod_calls, 1);   /* the blocked write asked for EPOLLOUT */
    EXPECT_EQ(app.rc, -EPIPE); /* and, refused, the connection closed */
    EXPECT_EQ(st.conns, 0u);
    close(c);
    sl_worker_free(w);
    sl_listen_close_all(&cfg, &lfd);
}

} // namespace
