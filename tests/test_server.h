// The set-up shared by the tests that run a real worker on loopback
// (server_test, ws_server_test, epoll_fail_test): one listener, the config
// around it, the worker, and the thread that runs it.
#ifndef SL_TESTS_TEST_SERVER_H
#define SL_TESTS_TEST_SERVER_H

#include <functional>
#include <string>
#include <thread>

#include "server/listen.h"
#include "server/server.h"

namespace sl_testing
{

/*
 * One listener (TCP on 127.0.0.1:0 or [::1]:0, or a Unix socket) with
 * limits small enough for tests to reach (8 KiB heads and targets, 64
 * headers, 1 MiB bodies) and 5 s timeouts (1 s drain bound, 10 s
 * handshake, no app limit). A test changes lc and cfg, then calls Open(); Start() runs the
 * worker on its own thread, or the test polls it on its own. The destructor
 * calls Close().
 */
class TestServer
{
  public:
    enum class Addr { kIpv4, kIpv6, kUnix };

    explicit TestServer(Addr addr = Addr::kIpv4, const std::string &unix_path = "");
    virtual ~TestServer();
    TestServer(const TestServer &) = delete;
    TestServer &operator=(const TestServer &) = delete;

    /* Copies the listener's limits, timeouts and websocket settings into
     * cfg (the global ones, as the config compiler would), opens the
     * listener, learns its port and makes the worker. False on failure. */
    bool Open(const sl_app_ops *ops, void *app);
    /* Runs `loop` (default: sl_worker_run) on the worker thread. */
    void Start(std::function<void()> loop = nullptr);
    /* Signals a drain and joins the worker thread; no-op when not running. */
    void Stop();
    /* Stop(), then frees the worker and closes the listener (idempotent).
     * A subclass that owns the app calls it in its destructor: freeing the
     * worker may still call the app. */
    void Close();

    bool ok() const
    {
        return fd >= 0 && w != nullptr;
    }

    std::string unix_path; /* lc.path points into it */
    sl_listener_config lc{};
    sl_config cfg{};
    int fd = -1;
    int port = 0; /* TCP: the port the kernel picked */
    sl_worker *w = nullptr;

  private:
    std::thread thread_;
};

} // namespace sl_testing

#endif
