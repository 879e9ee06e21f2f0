// The metrics registry: slots shared across fork, sums over processes,
// reclaimed slots, the overflow slot, the registry across the master's
// re-exec (compatible or not), the exposition text, Accept negotiation.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/metrics.h"
#include "tests/config_testing.h"

namespace
{

const char kYaml[] = "app: {target: \"m:app\"}\n"
                     "listeners:\n"
                     "  - tcp: \"127.0.0.1:8000\"\n"
                     "    name: 'we\"b'\n"
                     "    routes:\n"
                     "      - {name: hz, path: /healthz, health: {}}\n"
                     "      - {path: /static/*, files: {root: /tmp}}\n"
                     "  - tcp: \"127.0.0.1:9100\"\n"
                     "    routes:\n"
                     "      - {path: /metrics, metrics: {}}\n";

class Metrics : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        load_.reset(new sltest::Load(kYaml));
        ASSERT_TRUE(load_->ok()) << load_->errors();
        ASSERT_EQ(0, sl_metrics_init(load_->cfg(), 4, "9.9.9", false));
        ASSERT_TRUE(sl_metrics_enabled());
    }
    void TearDown() override
    {
        sl_metrics_fini();
        load_.reset();
    }

    static std::string Render(sl_metrics_format f = SL_METRICS_PROMETHEUS)
    {
        char *out = nullptr;
        size_t len = 0;
        EXPECT_EQ(0, sl_metrics_render(f, &out, &len));
        std::string s(out, len);
        free(out);
        return s;
    }

    // The value of the sample whose name and labels are exactly `series`.
    static std::string Value(const std::string &text, const std::string &series)
    {
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line))
            if (line.compare(0, series.size() + 1, series + " ") == 0)
                return line.substr(series.size() + 1);
        return "<absent>";
    }

    static void Request(size_t listener, size_t route, const char *method, int status, uint64_t us,
                        uint64_t in = 0, uint64_t out = 0)
    {
        sl_metrics_request_start(listener);
        sl_metrics_exchange x = {};
        x.listener = listener;
        x.route = route;
        x.method = method;
        x.method_len = method ? strlen(method) : 0;
        x.status = status;
        x.duration_us = us;
        x.bytes_in = in;
        x.bytes_out = out;
        x.started = true;
        sl_metrics_request_end(&x);
    }

    // Runs fn in a forked child that claims a slot, and reaps it.
    template <typename F> static void InChild(F fn)
    {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int rc = sl_metrics_attach();
            fn();
            _exit(rc == 0 ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(pid, waitpid(pid, &status, 0));
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    std::unique_ptr<sltest::Load> load_;
};

const char kGetOk[] = "saltare_http_requests_total{listener=\"we\\\"b\",route=\"\",method=\"GET\","
                      "status=\"2xx\"}";

TEST_F(Metrics, SumsCountersOverEveryProcessThatClaimedASlot)
{
    ASSERT_EQ(0, sl_metrics_attach());
    Request(0, 0, "GET", 200, 100);
    for (int i = 0; i < 3; i++)
        InChild([] {
            Request(0, 0, "GET", 204, 100);
            Request(0, 0, "GET", 200, 100);
        });
    std::string t = Render();
    EXPECT_EQ("7", Value(t, kGetOk)) << t;
}

TEST_F(Metrics, ARespawnedWorkerReclaimsADeadSlotAndItsCountersGoOn)
{
    // 4 slots. Six children one after another: the last two
    // find no free slot and must take over the slots of dead ones.
    for (int i = 0; i < 6; i++)
        InChild([] {
            sl_metrics_conn(0, +1); // left open: a dead worker's gauge
            Request(0, 1, "POST", 503, 100);
        });
    std::string t = Render();
    EXPECT_EQ("6", Value(t, "saltare_http_requests_total{listener=\"we\\\"b\",route=\"hz\","
                            "method=\"POST\",status=\"5xx\"}"))
        << t;
    EXPECT_EQ("6", Value(t, "saltare_connections_accepted_total{listener=\"we\\\"b\"}"));
    // Gauges count only processes that still exist.
    EXPECT_EQ("0", Value(t, "saltare_connections_open{listener=\"we\\\"b\"}"));
    EXPECT_EQ("0", Value(t, "saltare_workers"));
}

// Forks `n` children that claim a slot each and stay alive until Release.
class Holders
{
  public:
    explicit Holders(int n)
    {
        EXPECT_EQ(0, pipe(hold_));
        EXPECT_EQ(0, pipe(ready_));
        for (int i = 0; i < n; i++) {
            pid_t k = fork();
            if (k == 0) {
                close(hold_[1]);
                char c = sl_metrics_attach() == 0 ? 'y' : 'n';
                if (write(ready_[1], &c, 1) != 1)
                    _exit(1);
                while (read(hold_[0], &c, 1) < 0 && errno == EINTR) {
                }
                _exit(0);
            }
            kids_.push_back(k);
        }
        for (int i = 0; i < n; i++) {
            char c = 0;
            EXPECT_EQ(1, read(ready_[0], &c, 1));
            EXPECT_EQ('y', c);
        }
    }
    ~Holders()
    {
        Release();
    }
    void Release()
    {
        if (hold_[1] < 0)
            return;
        for (int fd : {hold_[0], hold_[1], ready_[0], ready_[1]})
            close(fd);
        hold_[1] = -1;
        for (pid_t k : kids_)
            waitpid(k, nullptr, 0);
    }
    std::vector<pid_t> kids_;

  private:
    int hold_[2] = {-1, -1}, ready_[2] = {-1, -1};
};

TEST_F(Metrics, AWorkerWithoutASlotStillCountsIntoTheOverflowSlot)
{
    ASSERT_EQ(0, sl_metrics_attach()); // this process: slot 0
    Holders h(3);                      // every slot is taken by a live process
    for (int i = 0; i < 2; i++)
        InChild([] {
            ASSERT_EQ(-ENOSPC, sl_metrics_attach());
            EXPECT_EQ(-ENOSPC, sl_metrics_attach()); // idempotent
            sl_metrics_conn(0, +1);
            sl_metrics_conn(0, -1);
            Request(0, 0, "GET", 200, 100);
            Request(0, 0, "GET", 200, 100);
            _exit(0);
        });
    Request(0, 0, "GET", 200, 100);
    std::string t = Render();
    EXPECT_EQ("5", Value(t, kGetOk)) << t;
    EXPECT_EQ("2", Value(t, "saltare_connections_accepted_total{listener=\"we\\\"b\"}"));
    EXPECT_EQ("0", Value(t, "saltare_connections_open{listener=\"we\\\"b\"}"));
    EXPECT_EQ("4", Value(t, "saltare_workers")); // the overflow is not a process
}

TEST_F(Metrics, ASlotTheMasterReapedIsClaimedAgainAndItsCountersStay)
{
    Holders h(4); // every slot taken
    // The master reaped one (the mark wins over a pid that still exists,
    // e.g. one reused by another process).
    sl_metrics_reaped(h.kids_[2]);
    InChild([] {
        ASSERT_EQ(0, sl_metrics_attach()); // a slot of its own again
        Request(0, 0, "GET", 200, 100);
        _exit(0);
    });
    std::string t = Render();
    EXPECT_EQ("1", Value(t, kGetOk)) << t;
    h.Release(); // reaped: the kill(0) test frees their slots too
    InChild([] { Request(0, 0, "GET", 200, 100); });
    EXPECT_EQ("2", Value(Render(), kGetOk));
}

// The master's re-exec, in one process: the memfd named in the environment
// is all that crosses it; the old mapping and statics are gone.
static void Reexec()
{
    ASSERT_EQ(0, sl_metrics_exec_prepare());
    const char *v = getenv(SL_METRICS_ENV);
    ASSERT_NE(nullptr, v);
    long pid = 0;
    int fd = -1;
    ASSERT_EQ(2, sscanf(v, "%ld,%d", &pid, &fd));
    ASSERT_EQ((long)getpid(), pid);
    EXPECT_EQ(0, fcntl(fd, F_GETFD) & FD_CLOEXEC); // inherited by execve
    int kept = dup(fd);                            // what execve would keep
    sl_metrics_fini();                             // closes fd, unmaps
    ASSERT_EQ(
        0, setenv(SL_METRICS_ENV, (std::to_string(pid) + "," + std::to_string(kept)).c_str(), 1));
    sl_metrics_inherit(true);
    EXPECT_EQ(nullptr, getenv(SL_METRICS_ENV));
    EXPECT_NE(0, fcntl(kept, F_GETFD) & FD_CLOEXEC); // not leaked to the workers' execs
}

TEST_F(Metrics, AReexecGoesOnWithACompatibleRegistryWhileOldWorkersWrite)
{
    int go[2];
    ASSERT_EQ(0, pipe(go));
    pid_t old = fork(); // a worker of the old generation
    ASSERT_GE(old, 0);
    if (old == 0) {
        char c;
        if (sl_metrics_attach() != 0)
            _exit(1);
        Request(0, 0, "GET", 200, 100);
        if (read(go[0], &c, 1) != 1) // the master re-executed
            _exit(1);
        Request(0, 0, "GET", 200, 100); // draining: still its own slot
        _exit(0);
    }
    sl_metrics_worker_restarted();
    sl_metrics_set_generation(1);
    std::string before = Render();
    Reexec();
    sltest::Load same(kYaml); // compiled again: same series
    ASSERT_EQ(0, sl_metrics_init(same.cfg(), 4, "9.9.9", false));
    sl_metrics_set_generation(2);
    ASSERT_EQ(1, write(go[1], "x", 1));
    int status = 0;
    ASSERT_EQ(old, waitpid(old, &status, 0));
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sl_metrics_reaped(old);
    std::string t = Render();
    EXPECT_EQ("2", Value(t, kGetOk)) << t;
    EXPECT_EQ("1", Value(t, "saltare_worker_restarts_total"));
    EXPECT_EQ("2", Value(t, "saltare_reload_generation"));
    std::string start = "saltare_process_start_time_seconds{process=\"master\",pid=\"" +
                        std::to_string(getpid()) + "\"}";
    EXPECT_EQ(Value(before, start), Value(t, start));
    // The new generation takes the old worker's slot: the counters stay.
    InChild([] { Request(0, 0, "GET", 200, 100); });
    EXPECT_EQ("3", Value(Render(), kGetOk));
    close(go[0]);
    close(go[1]);
    sl_metrics_fini(); // TearDown's is then a no-op
}

TEST_F(Metrics, AReexecWithOtherRoutesStartsANewRegistryButKeepsTheMastersFacts)
{
    InChild([] { Request(0, 0, "GET", 200, 100); });
    sl_metrics_worker_restarted();
    std::string before = Render();
    std::string start = "saltare_process_start_time_seconds{process=\"master\",pid=\"" +
                        std::to_string(getpid()) + "\"}";
    ASSERT_NE("<absent>", Value(before, start));
    Reexec();
    std::string yaml = kYaml;
    yaml += "      - {name: more, path: /more, health: {}}\n"; // one route more
    sltest::Load other(yaml.c_str());
    ASSERT_TRUE(other.ok()) << other.errors();
    ASSERT_EQ(0, sl_metrics_init(other.cfg(), 4, "9.9.9", false));
    std::string t = Render();
    EXPECT_EQ("<absent>", Value(t, kGetOk)) << t; // a reset (logged)
    EXPECT_EQ("1", Value(t, "saltare_worker_restarts_total"));
    EXPECT_EQ(Value(before, start), Value(t, start));
    sl_metrics_fini();
}

TEST_F(Metrics, AReexecWithRenamedRoutesStartsANewRegistry)
{
    InChild([] { Request(0, 1, "GET", 200, 100); });
    Reexec();
    std::string yaml = kYaml;
    yaml.replace(yaml.find("name: hz"), 8, "name: hx"); // same sizes, other labels
    sltest::Load other(yaml.c_str());
    ASSERT_TRUE(other.ok()) << other.errors();
    ASSERT_EQ(0, sl_metrics_init(other.cfg(), 4, "9.9.9", false));
    std::string t = Render();
    EXPECT_EQ(std::string::npos, t.find("method=\"GET\",status=\"2xx\"")) << t;
    sl_metrics_fini();
}

TEST_F(Metrics, AnotherSlotCountIsNotCompatible)
{
    InChild([] { Request(0, 0, "GET", 200, 100); });
    Reexec();
    sltest::Load same(kYaml);
    ASSERT_EQ(0, sl_metrics_init(same.cfg(), 8, "9.9.9", false));
    EXPECT_EQ("<absent>", Value(Render(), kGetOk));
    sl_metrics_fini();
}

TEST_F(Metrics, ARegistryNamedForAnotherProcessIsIgnored)
{
    InChild([] { Request(0, 0, "GET", 200, 100); });
    ASSERT_EQ(0, sl_metrics_exec_prepare());
    std::string v = getenv(SL_METRICS_ENV);
    int fd = std::stoi(v.substr(v.find(',') + 1));
    int kept = dup(fd);
    sl_metrics_fini();
    // an app that runs saltare: its parent's value is not its own state
    ASSERT_EQ(0, setenv(SL_METRICS_ENV, ("1," + std::to_string(kept)).c_str(), 1));
    sl_metrics_inherit(true);
    EXPECT_EQ(nullptr, getenv(SL_METRICS_ENV));
    sltest::Load same(kYaml);
    ASSERT_EQ(0, sl_metrics_init(same.cfg(), 4, "9.9.9", false));
    EXPECT_EQ("<absent>", Value(Render(), kGetOk));
    EXPECT_EQ(0, fcntl(kept, F_GETFD) & FD_CLOEXEC); // not ours: untouched
    close(kept);
    sl_metrics_fini();
}

TEST_F(Metrics, AFailedExecPutsCloseOnExecBack)
{
    ASSERT_EQ(0, sl_metrics_exec_prepare());
    std::string v = getenv(SL_METRICS_ENV);
    int fd = std::stoi(v.substr(v.find(',') + 1));
    sl_metrics_exec_abort();
    EXPECT_EQ(nullptr, getenv(SL_METRICS_ENV));
    EXPECT_NE(0, fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

TEST_F(Metrics, GaugesRiseAndFall)
{
    ASSERT_EQ(0, sl_metrics_attach());
    sl_metrics_conn(1, +1);
    sl_metrics_conn(1, +1);
    sl_metrics_conn(1, -1);
    sl_metrics_request_start(1);
    sl_metrics_ws_open(1, +1);
    std::string t = Render();
    EXPECT_EQ("1", Value(t, "saltare_connections_open{listener=\"127.0.0.1:9100\"}")) << t;
    EXPECT_EQ("2", Value(t, "saltare_connections_accepted_total{listener=\"127.0.0.1:9100\"}"));
    EXPECT_EQ("1", Value(t, "saltare_http_requests_in_flight{listener=\"127.0.0.1:9100\"}"));
    EXPECT_EQ("1", Value(t, "saltare_websockets_open{listener=\"127.0.0.1:9100\"}"));
    EXPECT_EQ("1", Value(t, "saltare_websockets_opened_total{listener=\"127.0.0.1:9100\"}"));
    EXPECT_EQ("1", Value(t, "saltare_workers"));
}

TEST_F(Metrics, HistogramBucketsAreCumulativeAndEndInTheCount)
{
    ASSERT_EQ(0, sl_metrics_attach());
    Request(0, 0, "GET", 200, 1000);     // <= 1 ms: the first bucket
    Request(0, 0, "GET", 200, 1001);     // just above it
    Request(0, 0, "GET", 200, 300000);   // 0.5
    Request(0, 0, "GET", 200, 60000000); // a minute: +Inf only
    std::string t = Render();
    std::string p = "saltare_http_request_duration_seconds";
    std::string l = "{listener=\"we\\\"b\",route=\"\"";
    EXPECT_EQ("1", Value(t, p + "_bucket" + l + ",le=\"0.001\"}")) << t;
    EXPECT_EQ("2", Value(t, p + "_bucket" + l + ",le=\"0.0025\"}"));
    EXPECT_EQ("2", Value(t, p + "_bucket" + l + ",le=\"0.25\"}"));
    EXPECT_EQ("3", Value(t, p + "_bucket" + l + ",le=\"0.5\"}"));
    EXPECT_EQ("3", Value(t, p + "_bucket" + l + ",le=\"10.0\"}"));
    EXPECT_EQ("4", Value(t, p + "_bucket" + l + ",le=\"+Inf\"}"));
    EXPECT_EQ("4", Value(t, p + "_count" + l + "}"));
    EXPECT_EQ("60.302001", Value(t, p + "_sum" + l + "}"));
    // Routes with no request have no series.
    EXPECT_EQ("<absent>", Value(t, p + "_count{listener=\"we\\\"b\",route=\"hz\"}"));
}

TEST_F(Metrics, ClassifiesMethodsAndStatuses)
{
    ASSERT_EQ(0, sl_metrics_attach());
    Request(0, 2, "BREW", 418, 10);
    Request(0, 2, nullptr, 400, 10); // a head that did not parse
    Request(0, 2, "GETS", 101, 10);
    Request(0, 2, "DELETE", 999, 10); // out of range: 5xx
    std::string t = Render();
    std::string s = "saltare_http_requests_total{listener=\"we\\\"b\",route=\"routes.1\",";
    EXPECT_EQ("2", Value(t, s + "method=\"other\",status=\"4xx\"}")) << t;
    EXPECT_EQ("1", Value(t, s + "method=\"other\",status=\"1xx\"}"));
    EXPECT_EQ("1", Value(t, s + "method=\"DELETE\",status=\"5xx\"}"));
}

TEST_F(Metrics, EachKnownMethodHasItsOwnClass)
{
    ASSERT_EQ(0, sl_metrics_attach());
    const char *known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (const char *m : known)
        Request(1, 0, m, 200, 10);
    Request(1, 0, "get", 200, 10); // methods are case-sensitive
    std::string t = Render();
    for (const char *m : known)
        EXPECT_EQ("1", Value(t, std::string("saltare_http_requests_total{listener=\"127.0.0.1:"
                                            "9100\",route=\"\",method=\"") +
                                    m + "\",status=\"2xx\"}"))
            << m << "\n"
            << t;
    EXPECT_EQ("1", Value(t, "saltare_http_requests_total{listener=\"127.0.0.1:9100\",route=\"\","
                            "method=\"other\",status=\"2xx\"}"));
}

TEST_F(Metrics, CountsRejectsTimeoutsBytesAndInstanceFacts)
{
    ASSERT_EQ(0, sl_metrics_attach());
    sl_metrics_reject(0, SL_METRICS_REJECT_RATE);
    sl_metrics_reject(0, SL_METRICS_REJECT_RATE);
    sl_metrics_reject(5, SL_METRICS_REJECT_RATE); // no such listener: ignored
    sl_metrics_timeout(1, SL_METRICS_TIMEOUT_KEEP_ALIVE);
    sl_metrics_ws_message(0, true);
    Request(1, 0, "PUT", 201, 5, 1000, 20);
    sl_metrics_worker_restarted();
    sl_metrics_set_generation(3);
    sl_metrics_set_build("3.11.2", "uvloop");
    std::string t = Render();
    EXPECT_EQ("2", Value(t, "saltare_connections_rejected_total{listener=\"we\\\"b\","
                            "reason=\"rate\"}"))
        << t;
    EXPECT_EQ("0", Value(t, "saltare_connections_rejected_total{listener=\"we\\\"b\","
                            "reason=\"per_ip\"}"));
    EXPECT_EQ("1", Value(t, "saltare_timeouts_total{listener=\"127.0.0.1:9100\","
                            "kind=\"keep_alive\"}"));
    EXPECT_EQ("1", Value(t, "saltare_websocket_messages_total{listener=\"we\\\"b\","
                            "direction=\"out\"}"));
    EXPECT_EQ("1000",
              Value(t, "saltare_http_request_body_bytes_total{listener=\"127.0.0.1:9100\"}"));
    EXPECT_EQ("20",
              Value(t, "saltare_http_response_body_bytes_total{listener=\"127.0.0.1:9100\"}"));
    EXPECT_EQ("1", Value(t, "saltare_worker_restarts_total"));
    EXPECT_EQ("3", Value(t, "saltare_reload_generation"));
    EXPECT_EQ("1", Value(t, "saltare_build_info{version=\"9.9.9\",python=\"3.11.2\","
                            "loop=\"uvloop\"}"));
    // No TLS listener: no TLS series.
    EXPECT_EQ(std::string::npos, t.find("saltare_tls_handshakes_total{"));
}

TEST_F(Metrics, OpenMetricsNamesCounterFamiliesWithoutTotalAndEndsWithEof)
{
    ASSERT_EQ(0, sl_metrics_attach());
    Request(0, 0, "GET", 200, 10);
    std::string t = Render(SL_METRICS_OPENMETRICS);
    EXPECT_NE(std::string::npos, t.find("# TYPE saltare_http_requests counter\n")) << t;
    EXPECT_NE(std::string::npos, t.find("# TYPE saltare_build info\n"));
    EXPECT_EQ("1", Value(t, kGetOk));
    EXPECT_EQ("# EOF\n", t.substr(t.size() - 6));
    std::string p = Render(SL_METRICS_PROMETHEUS);
    EXPECT_NE(std::string::npos, p.find("# TYPE saltare_http_requests_total counter\n"));
    EXPECT_NE(std::string::npos, p.find("# TYPE saltare_build_info gauge\n"));
    EXPECT_EQ(std::string::npos, p.find("# EOF"));
}

TEST(MetricsOff, EverythingIsANoOpWithoutARegistry)
{
    sltest::Load plain("app: {target: \"m:app\"}\n");
    ASSERT_TRUE(plain.ok());
    ASSERT_EQ(0, sl_metrics_init(plain.cfg(), 4, "1", false)); // no metrics route
    EXPECT_FALSE(sl_metrics_enabled());
    EXPECT_EQ(0, sl_metrics_attach());
    sl_metrics_conn(0, +1);
    sl_metrics_reject(0, SL_METRICS_REJECT_PARSE_ERROR);
    char *out = nullptr;
    size_t len = 0;
    EXPECT_EQ(-ENOENT, sl_metrics_render(SL_METRICS_PROMETHEUS, &out, &len));
    // `force` maps one anyway.
    ASSERT_EQ(0, sl_metrics_init(plain.cfg(), 1, "1", true));
    EXPECT_TRUE(sl_metrics_enabled());
    sl_metrics_fini();
}

TEST(MetricsNegotiate, OpenMetricsOnlyWhenAcceptedWithANonZeroQuality)
{
    auto f = [](const char *a) { return sl_metrics_negotiate(a, a ? strlen(a) : 0); };
    EXPECT_EQ(SL_METRICS_PROMETHEUS, f(nullptr));
    EXPECT_EQ(SL_METRICS_PROMETHEUS, f("*/*"));
    EXPECT_EQ(SL_METRICS_PROMETHEUS, f("text/plain;version=0.0.4"));
    EXPECT_EQ(SL_METRICS_OPENMETRICS, f("application/openmetrics-text"));
    EXPECT_EQ(SL_METRICS_OPENMETRICS,
              f("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;"
                "q=0.1"));
    EXPECT_EQ(SL_METRICS_OPENMETRICS, f("text/plain, Application/OpenMetrics-Text; q=0.3"));
    EXPECT_EQ(SL_METRICS_PROMETHEUS, f("application/openmetrics-text; q=0"));
    EXPECT_EQ(SL_METRICS_PROMETHEUS, f("application/openmetrics-text;q=0.000"));
    EXPECT_EQ(SL_METRICS_PROMETHEUS, f("application/openmetrics-textual"));
    EXPECT_STREQ("text/plain; version=0.0.4; charset=utf-8",
                 sl_metrics_content_type(SL_METRICS_PROMETHEUS));
}

} // namespace
