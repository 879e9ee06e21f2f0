// Intercept routes: the path normaliser, and matching compiled route tables
// (order, paths, methods, hosts, sources, preflight fall-through).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/log.h"
#include "server/route.h"
#include "server/route_path.h"
#include "tests/config_testing.h"

namespace
{

std::string Norm(const std::string &p)
{
    std::vector<char> out(p.size() + 1);
    long n = sl_route_path_normalize(p.data(), p.size(), out.data());
    if (n < 0)
        return "<none>";
    EXPECT_EQ('\0', out[(size_t)n]);
    return std::string(out.data(), (size_t)n);
}

TEST(RoutePath, DecodesPercentEscapesInEitherCase)
{
    EXPECT_EQ("/a b/c", Norm("/a%20b/c"));
    EXPECT_EQ("/admin", Norm("/%61%64%6D%69%6e"));
}

TEST(RoutePath, KeepsMalformedEscapesAsTheAppSeesThem)
{
    EXPECT_EQ("/a%zz", Norm("/a%zz"));
    EXPECT_EQ("/a%2", Norm("/a%2"));
    EXPECT_EQ("/a%", Norm("/a%"));
}

TEST(RoutePath, RemovesDotSegmentsAndMergesSlashes)
{
    EXPECT_EQ("/a/c", Norm("/a/b/../c"));
    EXPECT_EQ("/a/c", Norm("/a/./c"));
    EXPECT_EQ("/a/", Norm("/a/b/.."));
    EXPECT_EQ("/a/", Norm("/a/."));
    EXPECT_EQ("/", Norm("/.."));
    EXPECT_EQ("/admin", Norm("/../../admin"));
    EXPECT_EQ("/a/b", Norm("//a///b"));
    EXPECT_EQ("/a/b/", Norm("/a/b/"));
    EXPECT_EQ("/", Norm("/"));
    // dots inside a name are no dot segments
    EXPECT_EQ("/a/..b/.c/...", Norm("/a/..b/.c/..."));
}

TEST(RoutePath, TreatsEncodedDotsAndSlashesLikeTheirDecodedForm)
{
    EXPECT_EQ("/admin/x", Norm("/static/%2e%2e/admin/x"));
    EXPECT_EQ("/admin/x", Norm("/static/%2E%2E%2Fadmin/x"));
    EXPECT_EQ("/admin/x", Norm("/static/..%2fadmin/x"));
    EXPECT_EQ("/admin/x", Norm("/static%2f..%2f..%2fadmin%2fx"));
    EXPECT_EQ("/admin", Norm("/%2f%2fadmin"));
}

TEST(RoutePath, RefusesTargetsWithoutAPath)
{
    EXPECT_EQ("<none>", Norm("*"));
    EXPECT_EQ("<none>", Norm(""));
    EXPECT_EQ("<none>", Norm("a/b"));
}

TEST(RoutePath, MatchesPrefixesOnlyBelowTheirSlash)
{
    size_t rest = 99;
    EXPECT_TRUE(sl_route_path_match("/static/a.css", 13, "/static/", 8, true, &rest));
    EXPECT_EQ(8u, rest);
    EXPECT_TRUE(sl_route_path_match("/static/", 8, "/static/", 8, true, &rest));
    EXPECT_FALSE(sl_route_path_match("/static", 7, "/static/", 8, true, &rest));
    EXPECT_FALSE(sl_route_path_match("/staticx/a", 10, "/static/", 8, true, &rest));
    EXPECT_TRUE(sl_route_path_match("/healthz", 8, "/healthz", 8, false, nullptr));
    EXPECT_FALSE(sl_route_path_match("/healthz/", 9, "/healthz", 8, false, nullptr));
}

// A compiled table and requests parsed by the real parser.
class RouteFind : public ::testing::Test
{
  protected:
    void Compile(const std::string &routes)
    {
        load_.reset(new sltest::Load("app: {target: \"m:app\"}\nroutes:\n" + routes));
        ASSERT_TRUE(load_->ok()) << load_->errors();
    }

    // The index of the route that matches, -1 for none; -2 - i when route
    // i matched but refused the client.
    int Find(const std::string &head, const char *peer = "127.0.0.1", bool is_unix = false)
    {
        std::string req = head + "\r\n";
        sl_h1_header hdrs[32];
        sl_h1_request h = {};
        h.headers = hdrs;
        h.nheaders = 32;
        sl_h1_limits lim = {16384, 32, 8192};
        int rc = sl_h1_parse_request(req.data(), req.size(), 0, &lim, &h);
        EXPECT_GT(rc, 0) << head;
        sockaddr_storage ss = {};
        if (peer && strchr(peer, ':')) {
            auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
            a->sin6_family = AF_INET6;
            EXPECT_EQ(1, inet_pton(AF_INET6, peer, &a->sin6_addr));
        } else if (peer) {
            auto *a = reinterpret_cast<sockaddr_in *>(&ss);
            a->sin_family = AF_INET;
            EXPECT_EQ(1, inet_pton(AF_INET, peer, &a->sin_addr));
        }
        scratch_.assign(h.path_len + 1, '\0');
        if (is_unix)
            ss.ss_family = AF_UNIX;
        sl_route_find(&load_->cfg()->routes, &h, (sockaddr *)&ss, scratch_.data(), &hit_);
        if (!hit_.route)
            return -1;
        int i = (int)(hit_.route - load_->cfg()->routes.items);
        return hit_.forbidden ? -2 - i : i;
    }

    std::string Rest() const
    {
        return std::string(hit_.path + hit_.rest_off, hit_.path_len - hit_.rest_off);
    }

    std::unique_ptr<sltest::Load> load_;
    std::vector<char> scratch_;
    sl_route_hit hit_ = {};
};

std::string Get(const std::string &target, const std::string &host = "x")
{
    return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n";
}

TEST_F(RouteFind, TakesTheFirstRouteThatMatches)
{
    Compile("  - {path: /a/b, health: {}}\n"
            "  - {path: /a/*, return: {}}\n"
            "  - {path: /a/b, app: {}}\n");
    EXPECT_EQ(0, Find(Get("/a/b")));
    EXPECT_EQ(1, Find(Get("/a/c")));
    EXPECT_EQ(1, Find(Get("/a/b/")));
    EXPECT_EQ(-1, Find(Get("/a")));
    EXPECT_EQ(-1, Find(Get("/b")));
}

TEST_F(RouteFind, MatchesTheNormalisedPathAndGivesTheRest)
{
    Compile("  - {path: /static/*, return: {}}\n");
    EXPECT_EQ(0, Find(Get("/static/css/../js/app.js")));
    EXPECT_EQ("js/app.js", Rest());
    EXPECT_EQ(0, Find(Get("/%73tatic/a%20b")));
    EXPECT_EQ("a b", Rest());
    EXPECT_EQ(-1, Find(Get("/static/../admin")));
    EXPECT_EQ(-1, Find(Get("/static/%2e%2e/admin")));
    EXPECT_EQ(-1, Find(Get("/static/..%2Fadmin")));
    EXPECT_EQ(-1, Find("OPTIONS * HTTP/1.1\r\nHost: x\r\n"));
    // absolute-form: its path
    EXPECT_EQ(0, Find(Get("http://x/static/a")));
}

TEST_F(RouteFind, MatchesMethodsExactly)
{
    Compile("  - {methods: [GET, HEAD], return: {}}\n");
    EXPECT_EQ(0, Find(Get("/")));
    EXPECT_EQ(0, Find("HEAD / HTTP/1.1\r\nHost: x\r\n"));
    EXPECT_EQ(-1, Find("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"));
    EXPECT_EQ(-1, Find("get / HTTP/1.1\r\nHost: x\r\n"));
}

TEST_F(RouteFind, MatchesHostsWithoutPortInAnyCase)
{
    Compile("  - {host: api.example.com, return: {}}\n"
            "  - {host: \"*.Example.com\", return: {}}\n"
            "  - {host: \"[::1]\", return: {}}\n");
    EXPECT_EQ(0, Find(Get("/", "API.example.COM")));
    EXPECT_EQ(0, Find(Get("/", "api.example.com:8443")));
    EXPECT_EQ(0, Find(Get("/", "api.example.com.")));
    EXPECT_EQ(1, Find(Get("/", "a.b.example.com:80")));
    EXPECT_EQ(-1, Find(Get("/", "example.com")));
    EXPECT_EQ(-1, Find(Get("/", "badexample.com")));
    EXPECT_EQ(-1, Find(Get("/", "api.example.com.evil")));
    EXPECT_EQ(2, Find(Get("/", "[::1]:8000")));
    EXPECT_EQ(-1, Find(Get("/", "[::2]")));
    EXPECT_EQ(-1, Find("GET / HTTP/1.0\r\n"));
}

TEST_F(RouteFind, RefusesClientsOutsideTheSourceInsteadOfFallingThrough)
{
    Compile("  - {path: /admin/*, source: [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.7\", unix],"
            " app: {}}\n"
            "  - {path: /admin/*, return: {}}\n");
    EXPECT_EQ(0, Find(Get("/admin/x"), "10.1.2.3"));
    EXPECT_EQ(0, Find(Get("/admin/x"), "192.168.1.7"));
    EXPECT_EQ(-2, Find(Get("/admin/x"), "192.168.1.8"));
    EXPECT_EQ(-2, Find(Get("/admin/x"), "11.0.0.1"));
    EXPECT_EQ(0, Find(Get("/admin/x"), "fd12::1"));
    EXPECT_EQ(-2, Find(Get("/admin/x"), "fe80::1"));
    EXPECT_EQ(0, Find(Get("/admin/x"), "::ffff:10.9.9.9")); // mapped IPv4
    EXPECT_EQ(-2, Find(Get("/admin/x"), "::ffff:11.9.9.9"));
    EXPECT_EQ(0, Find(Get("/admin/x"), nullptr, true));
    EXPECT_EQ(-2, Find(Get("//admin/../admin/x"), "127.0.0.1"));
    // "unix" admits Unix-socket peers only, never an address (a Unix
    // listener behind a PROXY header judges the client it names).
    Compile("  - {path: /admin/*, source: [unix], app: {}}\n");
    EXPECT_EQ(0, Find(Get("/admin/x"), nullptr, true));
    EXPECT_EQ(-2, Find(Get("/admin/x"), "10.1.2.3"));
}

TEST_F(RouteFind, HonoursPrefixLengthsThatAreNotWholeBytes)
{
    Compile("  - {source: [\"172.16.0.0/12\", \"2001:db8::/33\"], app: {}}\n");
    EXPECT_EQ(0, Find(Get("/"), "172.31.255.255"));
    EXPECT_EQ(-2, Find(Get("/"), "172.32.0.0"));
    EXPECT_EQ(0, Find(Get("/"), "2001:db8:7fff::1"));
    EXPECT_EQ(-2, Find(Get("/"), "2001:db8:8000::1"));
    EXPECT_EQ(-2, Find(Get("/"), nullptr, true)); // no "unix"
}

TEST_F(RouteFind, LetsNonPreflightRequestsFallThroughAPreflightRoute)
{
    Compile("  - {path: /api/*, preflight: {origins: [\"*\"]}}\n"
            "  - {path: /api/*, app: {}}\n");
    const std::string pre = "OPTIONS /api/x HTTP/1.1\r\nHost: x\r\nOrigin: https://a\r\n";
    EXPECT_EQ(0, Find(pre + "Access-Control-Request-Method: GET\r\n"));
    EXPECT_EQ(1, Find(pre));
    EXPECT_EQ(1, Find(Get("/api/x")));
}

TEST(RouteConfig, InheritsTheGlobalTableUnlessAListenerReplacesIt)
{
    sltest::Load load(
        "app: {target: \"m:app\"}\n"
        "routes: [{path: /a, health: {}}]\n"
        "listeners:\n"
        "  - tcp: \"127.0.0.1:1\"\n"
        "  - {tcp: \"127.0.0.1:2\", routes: []}\n"
        "  - {tcp: \"127.0.0.1:3\", routes: [{path: /b, app: {}}, {path: /c, app: {}}]}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(load->routes.items, load->listeners[0].routes.items);
    EXPECT_EQ(1u, load->listeners[0].routes.n);
    EXPECT_EQ(0u, load->listeners[1].routes.n);
    ASSERT_EQ(2u, load->listeners[2].routes.n);
    EXPECT_STREQ("/c", load->listeners[2].routes.items[1].path);
    sltest::ExpectRoundTrip(load.cfg());
}

TEST(RouteConfig, LeavesUnsetPerRouteLimitsToTheListener)
{
    sltest::Load load(
        "app: {target: \"m:app\"}\n"
        "routes: [{app: {}}, {app: {}, limits: {max_body: 0}, timeouts: {body: 0}}]\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(SL_ROUTE_INHERIT_SIZE, load->routes.items[0].limits.max_body);
    EXPECT_EQ(SL_ROUTE_INHERIT_MS, load->routes.items[0].timeouts.body_ms);
    EXPECT_EQ(0u, load->routes.items[1].limits.max_body);
    EXPECT_EQ(0u, load->routes.items[1].timeouts.body_ms);
    sltest::ExpectRoundTrip(load.cfg());
}

TEST(RouteAccessLog, NamesTheRouteOnlyWhenOneMatched)
{
    char buf[SL_ACCESS_LINE_MAX];
    sl_access_entry e{};
    e.client = "unix";
    e.method = "GET";
    e.method_len = 3;
    e.path = "/healthz";
    e.path_len = 8;
    std::string line(buf, sl_access_format(buf, sizeof(buf), &e, nullptr));
    EXPECT_EQ(std::string::npos, line.find("route")) << line;
    e.route = "health\n\"x";
    line.assign(buf, sl_access_format(buf, sizeof(buf), &e, nullptr));
    EXPECT_NE(std::string::npos, line.find(",\"route\":\"health\\u000a\\\"x\"}\n")) << line;
}

TEST(RouteAccessLog, FitsTheLineWithEveryFieldAtItsLongest)
{
    char buf[SL_ACCESS_LINE_MAX];
    std::string path(70000, '\x01'), ua(70000, '\x02'), name(70000, '\x03'), m(200, 'M');
    sl_access_entry e{};
    e.client = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
    e.method = m.data();
    e.method_len = m.size();
    e.path = path.data();
    e.path_len = path.size();
    e.user_agent = ua.data();
    e.user_agent_len = ua.size();
    e.route = name.c_str();
    e.status = 999;
    e.bytes = e.latency_us = UINT64_MAX;
    size_t n = sl_access_format(buf, sizeof(buf), &e, nullptr);
    ASSERT_LE(n, sizeof(buf));
    std::string line(buf, n);
    EXPECT_NE(std::string::npos, line.find(",\"route\":\"\\u0003")) << line.substr(0, 200);
    EXPECT_EQ("\"}\n", line.substr(n - 3));
}

} // namespace
