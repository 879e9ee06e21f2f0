// The error and access logs: escaping, and writes that never block on a
// consumer that stopped reading (base/log.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "base/log.h"

static std::string Escape(const std::string &in, size_t cap = 4096)
{
    std::string out(cap, '\0');
    out.resize(sl_log_escape(&out[0], cap, in.data(), in.size()));
    return out;
}

TEST(LogEscape, TurnsControlsAndBackslashIntoEscapes)
{
    EXPECT_EQ(Escape("GET /a\nsaltare[1]: info: x\r\t\x1b[2J\\ \x7f"),
              "GET /a\\nsaltare[1]: info: x\\r\\t\\x1b[2J\\\\ \\x7f");
}

TEST(LogEscape, KeepsUtf8ButNotC1ControlsOrInvalidBytes)
{
    EXPECT_EQ(Escape("caf\xc3\xa9 \xe2\x82\xac \xc2\x9b[31m \xff \xed\xa0\x80"),
              "caf\xc3\xa9 \xe2\x82\xac \\u009b[31m \\xff \\xed\\xa0\\x80");
}

TEST(LogEscape, CutsBetweenEscapesNeverInside)
{
    EXPECT_EQ(Escape("ab\ncd", 4), "ab\\n");
    EXPECT_EQ(Escape("ab\ncd", 3), "ab");
    EXPECT_EQ(Escape("a\xc3\xa9", 2), "a");
}

TEST(AccessLog, EscapesC1ControlsAsTheirCodePoints)
{
    char buf[SL_ACCESS_LINE_MAX];
    std::string ua = "x\xc2\x85y\xc2\xa0z";
    sl_access_entry e{};
    e.client = "unix";
    e.method = "GET";
    e.method_len = 3;
    e.path = "/";
    e.path_len = 1;
    e.user_agent = ua.data();
    e.user_agent_len = ua.size();
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e, nullptr));
    EXPECT_NE(line.find("\"user_agent\":\"x\\u0085y\xc2\xa0z\","), std::string::npos) << line;
}

sl_access_entry Sample()
{
    sl_access_entry e{};
    e.time_ms = 1700000000123; /* 2023-11-14T22:13:20.123Z */
    e.client = "[2001:db8::1]:4711";
    e.method = "POST";
    e.method_len = 4;
    e.path = "/a b\"";
    e.path_len = 5;
    e.query = "x=1";
    e.query_len = 3;
    e.status = 201;
    e.minor = 1;
    e.bytes = 0;
    e.bytes_in = 5;
    e.latency_us = 1500000;
    e.user_agent = "curl/8\x01";
    e.user_agent_len = 7;
    e.listener = "api";
    return e;
}

TEST(AccessLog, CombinedFormatIsApaches)
{
    char buf[SL_ACCESS_LINE_MAX];
    sl_access_entry e = Sample();
    sl_access_log l{};
    l.format = SL_ACCESS_COMBINED;
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_EQ(line, "2001:db8::1 - - [14/Nov/2023:22:13:20 +0000] \"POST /a b\\\"?x=1 HTTP/1.1\" "
                    "201 - \"-\" \"curl/8\\x01\"\n");
    e.client = "10.1.2.3:80";
    e.bytes = 12;
    e.referer = "http://r/";
    e.referer_len = 9;
    line.assign(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_EQ(line.rfind("10.1.2.3 - - [", 0), 0u) << line;
    EXPECT_NE(line.find("\" 201 12 \"http://r/\" "), std::string::npos) << line;
}

TEST(AccessLog, JsonUnixTimeAndFields)
{
    char buf[SL_ACCESS_LINE_MAX];
    sl_access_entry e = Sample();
    sl_access_log l{};
    l.time_format = SL_TIME_UNIX;
    l.pid = 77;
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_EQ(line.rfind("{\"time\":1700000000.123,", 0), 0u) << line;
    EXPECT_NE(line.find("\"query\":\"x=1\",\"status\":201,\"bytes_in\":5,\"bytes_out\":0,"
                        "\"duration\":1.500000,"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("\"listener\":\"api\",\"tls\":null,\"pid\":77}\n"), std::string::npos)
        << line;
}

TEST(AccessLog, CustomTemplateFillsNamedFields)
{
    char buf[SL_ACCESS_LINE_MAX];
    sl_access_entry e = Sample();
    sl_access_log l{};
    l.format = SL_ACCESS_CUSTOM;
    l.tmpl = nullptr;
    l.time_format = SL_TIME_RFC3339;
    l.pid = 9;
    const char *t = "$time $client \"$method $path\" $status $bytes_out $$5 $referer $duration "
                    "$protocol $pid $listener $nosuch\nX";
    l.tmpl = t;
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_EQ(line, "2023-11-14T22:13:20.123Z [2001:db8::1]:4711 \"POST /a b\\\"\" 201 0 $5 - "
                    "1.500000 HTTP/1.1 9 api $nosuch X\n");
}

TEST(AccessLog, RequestIdIsAJsonFieldAndATemplateFieldWhenSet)
{
    char buf[SL_ACCESS_LINE_MAX];
    sl_access_entry e = Sample();
    sl_access_log l{};
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_EQ(line.find("request_id"), std::string::npos) << line;
    e.request_id = "abc-1\"x";
    e.request_id_len = 7;
    line.assign(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_NE(line.find(",\"request_id\":\"abc-1\\\"x\"}\n"), std::string::npos) << line;
    l.format = SL_ACCESS_CUSTOM;
    l.tmpl = "[$request_id]";
    line.assign(buf, sl_access_format(buf, sizeof(buf), &e, &l));
    EXPECT_EQ(line, "[abc-1\\\"x]\n");
}

/* A FIFO whose reader never reads: writing far more than it holds must
 * return at once, and what does arrive is whole lines. */
TEST(AccessLog, AFullFifoDropsWholeLinesAndNeverBlocks)
{
    const char *tmp = getenv("TEST_TMPDIR");
    std::string path = std::string(tmp ? tmp : "/tmp") + "/fifo-" + std::to_string(getpid());
    unlink(path.c_str());
    ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
    int rd = open(path.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(rd, 0);
    sl_access_log l;
    ASSERT_EQ(sl_access_log_open(&l, path.c_str()), 0);
    std::string ua(300, 'u');
    sl_access_entry e{};
    e.client = "unix";
    e.method = "GET";
    e.method_len = 3;
    e.path = "/";
    e.path_len = 1;
    e.status = 200;
    e.user_agent = ua.data();
    e.user_agent_len = ua.size();
    for (int i = 0; i < 5000; i++) /* ~1.8 MB against 64 KiB + 64 KiB */
        sl_access_log_write(&l, &e);
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = read(rd, buf, sizeof(buf))) > 0)
        got.append(buf, (size_t)n);
    EXPECT_GT(got.size(), 0u);
    EXPECT_LT(got.size(), 5000u * 300);
    ASSERT_EQ(got.back(), '\n');
    size_t lines = 0;
    for (size_t p = 0; p < got.size(); p = got.find('\n', p) + 1, lines++)
        ASSERT_EQ(got.compare(p, 34, "{\"time\":\"1970-01-01T00:00:00.000Z\""), 0)
            << "torn line at " << p;
    EXPECT_GT(lines, 100u);
    sl_access_log_close(&l);
    close(rd);
    unlink(path.c_str());
}
