#include "tests/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace sl_testing
{

TestServer::TestServer(Addr addr, const std::string &path) : unix_path(path)
{
    lc.mode = -1;
    if (addr == Addr::kUnix) {
        lc.kind = SL_LISTENER_UNIX;
        lc.path = unix_path.c_str();
        lc.name = lc.path;
    } else if (addr == Addr::kIpv6) {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        memcpy(&lc.addr, &a, sizeof(a));
        lc.addrlen = sizeof(a);
        lc.kind = SL_LISTENER_TCP;
        lc.name = "[::1]:0";
    } else {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        memcpy(&lc.addr, &a, sizeof(a));
        lc.addrlen = sizeof(a);
        lc.kind = SL_LISTENER_TCP;
        lc.name = "127.0.0.1:0";
    }
    lc.limits.max_body = 1 << 20;
    lc.limits.max_header_bytes = 8192;
    lc.limits.max_request_target = 8192;
    lc.limits.max_headers = 64;
    lc.timeouts = {5000, 5000, 5000, 5000, 1000, 0, 10000, 0};
    cfg.listeners = &lc;
    cfg.nlisteners = 1;
}

TestServer::~TestServer()
{
    Close();
}

void TestServer::Close()
{
    Stop();
    sl_worker_free(w);
    w = nullptr;
    if (fd >= 0) {
        int fds[1] = {fd};
        sl_listen_close_all(&cfg, fds);
        fd = -1;
    }
}

bool TestServer::Open(const sl_app_ops *ops, void *app)
{
    cfg.limits = lc.limits;
    cfg.timeouts = lc.timeouts;
    cfg.websocket = lc.websocket;
    fd = sl_listen_open(&lc);
    if (fd < 0)
        return false;
    if (lc.kind == SL_LISTENER_TCP) {
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
        port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                                              : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    }
    w = sl_worker_new(&cfg, &fd, ops, app);
    return w != nullptr;
}

void TestServer::Start(std::function<void()> loop)
{
    if (!loop)
        loop = [this] { sl_worker_run(w); };
    thread_ = std::thread(std::move(loop));
}

void TestServer::Stop()
{
    if (!thread_.joinable())
        return;
    sl_worker_signal_drain(w);
    thread_.join();
}

} // namespace sl_testing
