// The error and access logs: escaping, and writes that never block on a
// consumer that stopped reading (server/log.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "server/log.h"

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
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e));
    EXPECT_NE(line.find("\"user_agent\":\"x\\u0085y\xc2\xa0z\"}"), std::string::npos) << line;
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
        ASSERT_EQ(got.compare(p, 9, "{\"ts\":0.0"), 0) << "torn line at " << p;
    EXPECT_GT(lines, 100u);
    sl_access_log_close(&l);
    close(rd);
    unlink(path.c_str());
}
