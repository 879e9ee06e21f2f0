// Unit tests for server/h1: the request-head parser and the chunked decoder.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "server/h1.h"

namespace
{

const sl_h1_limits kLimits = {8192, 64, 4096};

std::string Str(const char *p, size_t n)
{
    return p ? std::string(p, n) : std::string("<null>");
}

// Parses from an exact-size heap copy, so ASan flags any read past len.
class Parser
{
  public:
    explicit Parser(sl_h1_limits lim = kLimits, size_t cap = 64) : lim_(lim), cap_(cap) {}

    int Parse(const std::string &s, size_t prev_len = 0)
    {
        buf_.reset(new char[s.size() ? s.size() : 1]);
        memcpy(buf_.get(), s.data(), s.size());
        memset(&req, 0, sizeof req);
        req.headers = hdrs;
        req.nheaders = cap_;
        return sl_h1_parse_request(buf_.get(), s.size(), prev_len, &lim_, &req);
    }

    std::string Header(size_t i) const
    {
        return Str(hdrs[i].name, hdrs[i].name_len) + "=" + Str(hdrs[i].value, hdrs[i].value_len);
    }
    std::string Method() const
    {
        return Str(req.method, req.method_len);
    }
    std::string Target() const
    {
        return Str(req.target, req.target_len);
    }
    std::string Path() const
    {
        return Str(req.path, req.path_len);
    }
    std::string Query() const
    {
        return Str(req.query, req.query_len);
    }
    std::string Host() const
    {
        return Str(req.host, req.host_len);
    }

    sl_h1_request req;
    sl_h1_header hdrs[64];

  private:
    sl_h1_limits lim_;
    size_t cap_;
    std::unique_ptr<char[]> buf_;
};

// A string literal with embedded NULs, without its terminator.
template <size_t N> std::string Lit(const char (&s)[N])
{
    return std::string(s, N - 1);
}

int Status(const std::string &s, sl_h1_limits lim = kLimits)
{
    Parser p(lim);
    return p.Parse(s);
}

// A request with the given extra header lines (each ending in CRLF).
std::string Get(const std::string &fields, const std::string &version = "HTTP/1.1")
{
    return "GET / " + version + "\r\nHost: h\r\n" + fields + "\r\n";
}

// Everything the parser reports, as one comparable string.
std::string Describe(int rc, const Parser &p)
{
    std::string out = std::to_string(rc);
    if (rc < 0)
        return out;
    const sl_h1_request &r = p.req;
    out += " " + p.Method() + " " + p.Target() + " " + p.Path() + " " + p.Query() + " 1." +
           std::to_string(r.minor_version) + " cl=" + std::to_string(r.content_length) +
           " ch=" + std::to_string(r.chunked) + " ka=" + std::to_string(r.keep_alive) +
           " ex=" + std::to_string(r.expect_continue) + " up=" + std::to_string(r.upgrade) +
           " host=" + p.Host();
    for (size_t i = 0; i < r.nheaders; i++)
        out += " " + p.Header(i);
    return out;
}

const char kBrowser[] =
    "GET /search?q=saltare&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=abc123; theme=dark\r\n"
    "\r\n";

// Valid and invalid heads used by the resumption and page-boundary tests.
const std::vector<std::string> &Samples()
{
    static const std::vector<std::string> v = {
        kBrowser,
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\r\n\r\nGET /x HTTP/1.0\nConnection: keep-alive\n\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Tab:\tv\t \r\n\r\n",
        "GET http://ex.com:80?a=b HTTP/1.1\r\nHost: ex.com\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GE\x01T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    };
    return v;
}

// ---- request line -------------------------------------------------------

TEST(H1Parse, ParsesABrowserRequest)
{
    Parser p;
    ASSERT_EQ(p.Parse(kBrowser), (int)strlen(kBrowser));
    EXPECT_EQ(p.Method(), "GET");
    EXPECT_EQ(p.Target(), "/search?q=saltare&lang=en");
    EXPECT_EQ(p.Path(), "/search");
    EXPECT_EQ(p.Query(), "q=saltare&lang=en");
    EXPECT_EQ(p.req.minor_version, 1);
    ASSERT_EQ(p.req.nheaders, 7u);
    EXPECT_EQ(p.Header(0), "Host=www.example.com");
    EXPECT_EQ(p.Header(3), "Accept-Language=en-US,en;q=0.5");
    EXPECT_EQ(p.Header(6), "Cookie=session=abc123; theme=dark");
    EXPECT_EQ(p.Host(), "www.example.com");
    EXPECT_EQ(p.req.content_length, -1);
    EXPECT_FALSE(p.req.chunked);
    EXPECT_TRUE(p.req.keep_alive);
    EXPECT_FALSE(p.req.expect_continue);
    EXPECT_FALSE(p.req.upgrade);
}

TEST(H1Parse, ReportsAbsentQueryAsNull)
{
    Parser p;
    ASSERT_GT(p.Parse("GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    EXPECT_EQ(p.Path(), "/a/b");
    EXPECT_EQ(p.req.query, nullptr);
}

TEST(H1Parse, ReportsEmptyQueryAsEmptyNotNull)
{
    Parser p;
    ASSERT_GT(p.Parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    EXPECT_EQ(p.Path(), "/a");
    ASSERT_NE(p.req.query, nullptr);
    EXPECT_EQ(p.req.query_len, 0u);
}

TEST(H1Parse, ParsesHttp10WithoutHost)
{
    Parser p;
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\n\r\n"), 0);
    EXPECT_EQ(p.req.minor_version, 0);
    EXPECT_EQ(p.req.host, nullptr);
    EXPECT_FALSE(p.req.keep_alive);
}

TEST(H1Parse, AcceptsAnyTokenAsMethod)
{
    Parser p;
    ASSERT_GT(p.Parse("M-SEARCH! / HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    EXPECT_EQ(p.Method(), "M-SEARCH!");
}

TEST(H1Parse, RejectsNonTokenMethod)
{
    EXPECT_EQ(Status("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Lit("G\0T / HTTP/1.1\r\nHost: h\r\n\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsAnythingButSingleSpaces)
{
    EXPECT_EQ(Status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsNonVisibleTargetBytes)
{
    for (int c : {0x00, 0x01, 0x09, 0x0b, 0x1f, 0x7f, 0x80, 0xc3, 0xff}) {
        std::string s =
            "GET /abcdefghij" + std::string(1, (char)c) + "k HTTP/1.1\r\nHost: h\r\n\r\n";
        EXPECT_EQ(Status(s), SL_H1_E_MALFORMED) << "byte " << c;
    }
}

TEST(H1Parse, RejectsRequestLineWithoutVersion)
{
    EXPECT_EQ(Status("GET /\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / \r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsMalformedVersions)
{
    for (const char *v : {"http/1.1", "HTTP/1", "HTTP/1.", "HTTP/11", "HTTP/1.10", "HTTP/1.1x",
                          "HTTP/a.1", "HTTPS/1.1", "HTTP/1.1.1"})
        EXPECT_EQ(Status(std::string("GET / ") + v + "\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED)
            << v;
}

TEST(H1Parse, Returns505ForOtherMajorVersions)
{
    for (const char *v : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.1", "HTTP/9.9", "HTTP/0.0"})
        EXPECT_EQ(Status(std::string("GET / ") + v + "\r\nHost: h\r\n\r\n"), SL_H1_E_VERSION) << v;
}

TEST(H1Parse, ServesAHigherMinorVersionAsHttp11)
{
    /* RFC 9110 6.2: a higher minor of a major version we implement is
     * processed as the highest minor we conform to. */
    for (const char *v : {"HTTP/1.2", "HTTP/1.9"}) {
        Parser p;
        ASSERT_GT(p.Parse(std::string("GET / ") + v + "\r\nHost: h\r\n\r\n"), 0) << v;
        EXPECT_EQ(p.req.minor_version, 1) << v;
        EXPECT_TRUE(p.req.keep_alive) << v;
        /* ...with 1.1's rules: Host is required. */
        EXPECT_EQ(Status(std::string("GET / ") + v + "\r\n\r\n"), SL_H1_E_MALFORMED) << v;
    }
}

TEST(H1Parse, RejectsAFragmentInTheTarget)
{
    /* RFC 9112 3.2: the target has no fragment; '#' is as invalid as a TAB,
     * wherever it sits (the word scanner and the byte loop both see it). */
    for (const char *t :
         {"/#", "/a#b", "/a?b#c", "/0123456789abcdef#", "/0123456#", "http://ex.com/#x", "#"})
        EXPECT_EQ(Status(std::string("GET ") + t + " HTTP/1.1\r\nHost: h\r\n\r\n"),
                  SL_H1_E_MALFORMED)
            << t;
    /* A percent-encoded one is data. */
    Parser p;
    ASSERT_GT(p.Parse("GET /a%23b HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    EXPECT_EQ(p.Path(), "/a%23b");
}

TEST(H1Errors, MapToTheirStatusesInOnePlace)
{
    EXPECT_EQ(sl_h1_error_status(SL_H1_E_MALFORMED), 400);
    EXPECT_EQ(sl_h1_error_status(SL_H1_E_BODY_TOO_LARGE), 413);
    EXPECT_EQ(sl_h1_error_status(SL_H1_E_TARGET_TOO_LONG), 414);
    EXPECT_EQ(sl_h1_error_status(SL_H1_E_HEAD_TOO_LARGE), 431);
    EXPECT_EQ(sl_h1_error_status(SL_H1_E_NOT_IMPLEMENTED), 501);
    EXPECT_EQ(sl_h1_error_status(SL_H1_E_VERSION), 505);
}

TEST(H1Parse, AcceptsAsteriskOnlyWithOptions)
{
    Parser p;
    ASSERT_GT(p.Parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    EXPECT_EQ(p.Target(), "*");
    EXPECT_EQ(p.Path(), "*");
    EXPECT_EQ(Status("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("options * HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, TakesPathAndQueryFromAbsoluteForm)
{
    Parser p;
    ASSERT_GT(p.Parse("GET http://ex.com:8080/a/b?c=d HTTP/1.1\r\nHost: ex.com\r\n\r\n"), 0);
    EXPECT_EQ(p.Target(), "http://ex.com:8080/a/b?c=d");
    EXPECT_EQ(p.Path(), "/a/b");
    EXPECT_EQ(p.Query(), "c=d");
    ASSERT_GT(p.Parse("GET HTTPS://ex.com HTTP/1.1\r\nHost: ex.com\r\n\r\n"), 0);
    EXPECT_EQ(p.Path(), "/");
    EXPECT_EQ(p.req.query, nullptr);
    ASSERT_GT(p.Parse("GET http://ex.com?x HTTP/1.1\r\nHost: ex.com\r\n\r\n"), 0);
    EXPECT_EQ(p.Path(), "/");
    EXPECT_EQ(p.Query(), "x");
}

TEST(H1Parse, TakesTheHostFromAnAbsoluteFormTargetNotTheHostField)
{
    Parser p;
    /* RFC 9112 3.2.2: the Host field is ignored; the app must not see a
     * host other than the one the request was routed by. */
    ASSERT_GT(p.Parse("GET http://real.example:8080/a?q HTTP/1.1\r\nX-A: 1\r\n"
                      "hOsT: evil.example\r\n\r\n"),
              0);
    EXPECT_EQ(p.Host(), "real.example:8080");
    EXPECT_EQ(p.Header(1), "hOsT=real.example:8080");
    EXPECT_EQ(p.Header(0), "X-A=1");
    ASSERT_GT(p.Parse("GET HTTPS://s.example?x HTTP/1.1\r\nHost: other\r\n\r\n"), 0);
    EXPECT_EQ(p.Host(), "s.example");
    EXPECT_EQ(p.Header(0), "Host=s.example");
    /* Origin-form keeps the field as sent; absolute-form still needs one. */
    ASSERT_GT(p.Parse("GET /a HTTP/1.1\r\nHost: h.example\r\n\r\n"), 0);
    EXPECT_EQ(p.Host(), "h.example");
    EXPECT_EQ(Status("GET http://a.example/ HTTP/1.1\r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsOtherAbsoluteForms)
{
    for (const char *t : {"http://", "http:///a", "ftp://ex.com/", "http://u@ex.com/", "http:/x",
                          "ex.com:80", "a/b"})
        EXPECT_EQ(Status(std::string("GET ") + t + " HTTP/1.1\r\nHost: h\r\n\r\n"),
                  SL_H1_E_MALFORMED)
            << t;
}

TEST(H1Parse, AnswersConnectWith501)
{
    EXPECT_EQ(Status("CONNECT ex.com:443 HTTP/1.1\r\nHost: ex.com:443\r\n\r\n"),
              SL_H1_E_NOT_IMPLEMENTED);
}

TEST(H1Parse, SkipsEmptyLinesBeforeTheRequestLine)
{
    Parser p;
    std::string s = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    ASSERT_EQ(p.Parse(s), (int)s.size());
    EXPECT_EQ(p.Method(), "GET");
}

TEST(H1Parse, AcceptsBareLfLineEnds)
{
    Parser p;
    std::string s = "GET / HTTP/1.1\nHost: h\nX: y\n\n";
    ASSERT_EQ(p.Parse(s), (int)s.size());
    EXPECT_EQ(p.Header(1), "X=y");
}

TEST(H1Parse, RejectsBareCR)
{
    EXPECT_EQ(Status("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1\rHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\n\r\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n"), SL_H1_E_MALFORMED);
}

// ---- header fields -----------------------------------------------------

TEST(H1Parse, StripsOwsAroundValuesAndKeepsNameCase)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("X-Mixed-Case: \t a b \t \r\nEmpty:\r\nSpaces:   \r\n")), 0);
    EXPECT_EQ(p.Header(1), "X-Mixed-Case=a b");
    EXPECT_EQ(p.Header(2), "Empty=");
    EXPECT_EQ(p.Header(3), "Spaces=");
}

TEST(H1Parse, AcceptsTabsAndObsTextInValues)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("X: a\tb\xc3\xa9\xff\r\n")), 0);
    EXPECT_EQ(p.Header(1), "X=a\tb\xc3\xa9\xff");
}

// Values are scanned eight bytes at a time; place tabs and a control byte at
// every offset relative to the words.
TEST(H1Parse, FindsControlBytesAfterTabsAtAnyOffset)
{
    for (size_t tab = 0; tab < 20; tab++) {
        std::string v = "0123456789abcdefghijklmnopqrstuv";
        v[tab] = '\t';
        v[tab + 3] = '\t';
        Parser p;
        ASSERT_GT(p.Parse(Get("X: x" + v + "\r\n")), 0) << tab;
        EXPECT_EQ(p.Header(1), "X=x" + v);
        for (size_t ctl = tab + 1; ctl < v.size(); ctl++) {
            std::string bad = v;
            bad[ctl] = '\x1b';
            EXPECT_EQ(Status(Get("X: x" + bad + "\r\n")), SL_H1_E_MALFORMED) << tab << " " << ctl;
        }
    }
}

TEST(H1Parse, RejectsWhitespaceBeforeColon)
{
    EXPECT_EQ(Status(Get("Content-Length : 5\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("X\t: 5\r\n")), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsObsFold)
{
    EXPECT_EQ(Status(Get("X: a\r\n b\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("X: a\r\n\tb\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsNonTokenHeaderNames)
{
    EXPECT_EQ(Status(Get(Lit("X\0Y: 1\r\n"))), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("X(Y): 1\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("X\xc3\xa9: 1\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get(": 1\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("NoColon\r\n")), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsControlCharactersInValues)
{
    for (int c = 0; c < 0x20; c++) {
        if (c == '\t' || c == '\n')
            continue;
        std::string s = Get("X: abcdefghijkl" + std::string(1, (char)c) + "m\r\n");
        EXPECT_EQ(Status(s), SL_H1_E_MALFORMED) << "byte " << c;
    }
    EXPECT_EQ(Status(Get("X: a\x7f\r\n")), SL_H1_E_MALFORMED);
}

TEST(H1Parse, Returns431ForTooManyHeaders)
{
    sl_h1_limits lim = {8192, 3, 4096};
    EXPECT_GT(Status(Get("A: 1\r\nB: 2\r\n"), lim), 0);
    EXPECT_EQ(Status(Get("A: 1\r\nB: 2\r\nC: 3\r\n"), lim), SL_H1_E_HEAD_TOO_LARGE);
}

TEST(H1Parse, Returns431WhenTheCallersArrayIsFull)
{
    Parser p(kLimits, 2);
    EXPECT_GT(p.Parse(Get("A: 1\r\n")), 0);
    EXPECT_EQ(p.req.nheaders, 2u);
    EXPECT_EQ(p.Parse(Get("A: 1\r\nB: 2\r\n")), SL_H1_E_HEAD_TOO_LARGE);
}

TEST(H1Parse, Returns431WhenHeadExceedsMaxHead)
{
    std::string s = Get("X: " + std::string(100, 'a') + "\r\n");
    sl_h1_limits exact = {s.size(), 64, 4096};
    sl_h1_limits under = {s.size() - 1, 64, 4096};
    EXPECT_EQ(Status(s, exact), (int)s.size());
    EXPECT_EQ(Status(s, under), SL_H1_E_HEAD_TOO_LARGE);
    // Incomplete and already at the limit: the head cannot fit any more.
    EXPECT_EQ(Status(s.substr(0, s.size() - 1), under), SL_H1_E_HEAD_TOO_LARGE);
    EXPECT_EQ(Status(s.substr(0, s.size() - 2), under), SL_H1_INCOMPLETE);
    // Empty lines before the request line count too.
    EXPECT_EQ(Status("\r\n" + s, exact), SL_H1_E_HEAD_TOO_LARGE);
}

TEST(H1Parse, Returns414ForLongTargets)
{
    sl_h1_limits lim = {8192, 64, 16};
    std::string ok = "/" + std::string(15, 'a'), lng = "/" + std::string(16, 'a');
    EXPECT_GT(Status("GET " + ok + " HTTP/1.1\r\nHost: h\r\n\r\n", lim), 0);
    EXPECT_EQ(Status("GET " + lng + " HTTP/1.1\r\nHost: h\r\n\r\n", lim), SL_H1_E_TARGET_TOO_LONG);
}

TEST(H1Parse, Returns414BeforeTheRequestLineEnds)
{
    sl_h1_limits lim = {8192, 64, 16};
    std::string s = "GET /" + std::string(100, 'a');
    Parser p(lim);
    EXPECT_EQ(p.Parse(s.substr(0, 4 + 16)), SL_H1_INCOMPLETE);
    EXPECT_EQ(p.Parse(s.substr(0, 4 + 17)), SL_H1_E_TARGET_TOO_LONG);
    // Also on the resumed path, which skips the full parse.
    EXPECT_EQ(p.Parse(s, 20), SL_H1_E_TARGET_TOO_LONG);
}

TEST(H1Parse, ReturnsIncompleteAndKeepsCapacityOnEveryPrefix)
{
    std::string s = kBrowser;
    Parser p;
    for (size_t k = 0; k < s.size(); k++) {
        ASSERT_EQ(p.Parse(s.substr(0, k)), SL_H1_INCOMPLETE) << k;
        ASSERT_EQ(p.req.nheaders, 64u) << k;
    }
}

// ---- framing -----------------------------------------------------------

TEST(H1Parse, ParsesContentLength)
{
    Parser p;
    std::string s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0005\r\n\r\nhello";
    ASSERT_EQ(p.Parse(s), (int)s.size() - 5);
    EXPECT_EQ(p.req.content_length, 5);
    ASSERT_GT(p.Parse(Get("content-length: 9223372036854775807\r\n")), 0);
    EXPECT_EQ(p.req.content_length, INT64_MAX);
}

TEST(H1Parse, RejectsContentLengthThatIsNotDigits)
{
    for (const char *v : {"+5", "-5", "-0", "5 5", "0x5", "5a", "", "9223372036854775808",
                          "99999999999999999999999", "5,", ",5", "5;q=1", "\xd9\xa5"})
        EXPECT_EQ(Status(Get(std::string("Content-Length: ") + v + "\r\n")), SL_H1_E_MALFORMED)
            << v;
}

TEST(H1Parse, AcceptsIdenticalDuplicateContentLengths)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("Content-Length: 7\r\nContent-Length: 7\r\n")), 0);
    EXPECT_EQ(p.req.content_length, 7);
    ASSERT_GT(p.Parse(Get("Content-Length: 7 , 7,7\r\n")), 0);
    EXPECT_EQ(p.req.content_length, 7);
}

TEST(H1Parse, RejectsDifferingContentLengths)
{
    EXPECT_EQ(Status(Get("Content-Length: 7\r\nContent-Length: 8\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("Content-Length: 7, 8\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("Content-Length: 0\r\nContent-Length: 00\r\nContent-Length: 1\r\n")),
              SL_H1_E_MALFORMED);
}

TEST(H1Parse, RecognisesChunkedCaseInsensitively)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("Transfer-Encoding: chunked\r\n")), 0);
    EXPECT_TRUE(p.req.chunked);
    EXPECT_EQ(p.req.content_length, -1);
    ASSERT_GT(p.Parse(Get("transfer-encoding:  ChUnKeD \r\n")), 0);
    EXPECT_TRUE(p.req.chunked);
    ASSERT_GT(p.Parse(Get("Transfer-Encoding: , chunked,\r\n")), 0);
    EXPECT_TRUE(p.req.chunked);
}

TEST(H1Parse, RejectsContentLengthWithTransferEncoding)
{
    EXPECT_EQ(Status(Get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
              SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
              SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n")), SL_H1_E_MALFORMED);
}

TEST(H1Parse, Returns501ForAnythingButAFinalChunked)
{
    for (const char *te :
         {"gzip, chunked", "chunked, gzip", "identity", "chunked, chunked",
          "chunked\r\nTransfer-Encoding: chunked", "gzip\r\nTransfer-Encoding: chunked",
          "chunked;q=1", "chunked x", "xchunked"})
        EXPECT_EQ(Status(Get(std::string("Transfer-Encoding: ") + te + "\r\n")),
                  SL_H1_E_NOT_IMPLEMENTED)
            << te;
}

TEST(H1Parse, RejectsEmptyTransferEncoding)
{
    EXPECT_EQ(Status(Get("Transfer-Encoding:\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("Transfer-Encoding: ,\r\n")), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RejectsTransferEncodingOnHttp10)
{
    EXPECT_EQ(Status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), SL_H1_E_MALFORMED);
}

TEST(H1Parse, RequiresExactlyOneHostOnHttp11)
{
    EXPECT_EQ(Status("GET / HTTP/1.1\r\n\r\n"), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("Host: h\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status(Get("HOST: other\r\n")), SL_H1_E_MALFORMED);
    EXPECT_EQ(Status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), SL_H1_E_MALFORMED);
    Parser p;
    ASSERT_GT(p.Parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
    ASSERT_NE(p.req.host, nullptr);
    EXPECT_EQ(p.req.host_len, 0u);
}

TEST(H1Parse, KeepsHttp11AliveUnlessClose)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("")), 0);
    EXPECT_TRUE(p.req.keep_alive);
    ASSERT_GT(p.Parse(Get("Connection: Keep-Alive, CLOSE\r\n")), 0);
    EXPECT_FALSE(p.req.keep_alive);
    ASSERT_GT(p.Parse(Get("Connection: foo\r\nConnection: close\r\n")), 0);
    EXPECT_FALSE(p.req.keep_alive);
    ASSERT_GT(p.Parse(Get("Connection: closed, xclose\r\n")), 0);
    EXPECT_TRUE(p.req.keep_alive);
}

TEST(H1Parse, KeepsHttp10AliveOnlyWithKeepAlive)
{
    Parser p;
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    EXPECT_TRUE(p.req.keep_alive);
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\nConnection: x , KEEP-ALIVE\r\n\r\n"), 0);
    EXPECT_TRUE(p.req.keep_alive);
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0);
    EXPECT_FALSE(p.req.keep_alive);
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\nKeep-Alive: 5\r\n\r\n"), 0);
    EXPECT_FALSE(p.req.keep_alive);
}

TEST(H1Parse, DetectsExpectContinueOnHttp11Only)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("Expect: 100-Continue\r\n")), 0);
    EXPECT_TRUE(p.req.expect_continue);
    ASSERT_GT(p.Parse(Get("Expect: 100-continue-ish\r\n")), 0);
    EXPECT_FALSE(p.req.expect_continue);
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 0);
    EXPECT_FALSE(p.req.expect_continue);
}

TEST(H1Parse, DetectsUpgradeOnlyWithConnectionAndUpgradeHeaders)
{
    Parser p;
    ASSERT_GT(p.Parse(Get("Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n")), 0);
    EXPECT_TRUE(p.req.upgrade);
    EXPECT_TRUE(p.req.keep_alive);
    ASSERT_GT(p.Parse(Get("Connection: upgrade\r\n")), 0);
    EXPECT_FALSE(p.req.upgrade);
    ASSERT_GT(p.Parse(Get("Upgrade: websocket\r\n")), 0);
    EXPECT_FALSE(p.req.upgrade);
    ASSERT_GT(p.Parse(Get("Connection: upgrade\r\nUpgrade:\r\n")), 0);
    EXPECT_FALSE(p.req.upgrade);
    ASSERT_GT(p.Parse("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"), 0);
    EXPECT_FALSE(p.req.upgrade);
}

// ---- streams -----------------------------------------------------------

TEST(H1Parse, ParsesPipelinedRequestsFromTheHeadLength)
{
    std::string a = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
    std::string b = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    std::string c = "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    std::string all = a + "xyz" + b + c;
    Parser p;
    int n = p.Parse(all);
    ASSERT_EQ(n, (int)a.size());
    EXPECT_EQ(p.req.content_length, 3);
    size_t off = a.size() + 3;
    n = p.Parse(all.substr(off));
    ASSERT_EQ(n, (int)b.size());
    EXPECT_EQ(p.Path(), "/b");
    off += n;
    n = p.Parse(all.substr(off));
    ASSERT_EQ(n, (int)c.size());
    EXPECT_EQ(p.Path(), "/c");
    EXPECT_FALSE(p.req.keep_alive);
}

TEST(H1Parse, ResumesAtEveryByteBoundary)
{
    for (const std::string &s : Samples()) {
        Parser one, p;
        std::string want = Describe(one.Parse(s), one);
        for (size_t k = 0; k < s.size(); k++) {
            int rc = p.Parse(s.substr(0, k));
            if (rc == SL_H1_INCOMPLETE) {
                ASSERT_EQ(Describe(p.Parse(s, k), p), want) << s << " split at " << k;
            } else {
                // Only a head that is bad as a whole may fail early.
                ASSERT_LT(rc, SL_H1_INCOMPLETE) << s << " prefix " << k;
                ASSERT_LT(one.Parse(s), SL_H1_INCOMPLETE) << s << " prefix " << k;
            }
        }
    }
}

TEST(H1Parse, ResumesOneByteAtATime)
{
    for (const std::string &s : Samples()) {
        Parser one, p;
        int want = one.Parse(s), rc = SL_H1_INCOMPLETE;
        size_t k = 0;
        while (rc == SL_H1_INCOMPLETE && k < s.size()) {
            rc = p.Parse(s.substr(0, k + 1), k);
            k++;
        }
        if (want >= 0) {
            EXPECT_EQ(Describe(rc, p), Describe(want, one)) << s;
            EXPECT_EQ(k, (size_t)want) << s;
        } else {
            EXPECT_LT(rc, SL_H1_INCOMPLETE) << s;
        }
    }
}

// Every prefix of every sample placed so that it ends on an inaccessible
// page: any read past len faults.
TEST(H1Parse, NeverReadsPastLenAtAPageBoundary)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m =
        (char *)mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    ASSERT_EQ(mprotect(m + pg, pg, PROT_NONE), 0);
    sl_h1_header hdrs[64];
    sl_h1_request req;
    for (const std::string &s : Samples()) {
        for (size_t k = 1; k <= s.size(); k++) {
            char *b = m + pg - k;
            memcpy(b, s.data(), k);
            req.headers = hdrs;
            req.nheaders = 64;
            int rc = sl_h1_parse_request(b, k, 0, &kLimits, &req);
            req.nheaders = 64;
            int rc2 = sl_h1_parse_request(b, k, k - 1, &kLimits, &req);
            if (rc >= 0) {
                EXPECT_EQ(rc2, rc) << s << " " << k;
            }
        }
    }
    munmap(m, 2 * pg);
}

// ---- chunked -----------------------------------------------------------

struct Decoded {
    int rc = 0;
    std::string data;
    size_t consumed = 0;
};

// Feeds `in` cut at `cuts` the way a connection would: each call gets the
// unconsumed rest plus the new bytes, from an exact-size heap copy.
Decoded Decode(const std::string &in, const std::vector<size_t> &cuts = {}, uint64_t max_body = 0)
{
    Decoded out;
    sl_h1_chunked d = {};
    d.max_body = max_body;
    std::string pending;
    size_t prev = 0;
    std::vector<size_t> ends = cuts;
    ends.push_back(in.size());
    for (size_t end : ends) {
        pending += in.substr(prev, end - prev);
        prev = end;
        while (!pending.empty()) {
            std::unique_ptr<char[]> b(new char[pending.size()]);
            memcpy(b.get(), pending.data(), pending.size());
            size_t used = 0, off = 0, n = 0;
            out.rc = sl_h1_chunked_feed(&d, b.get(), pending.size(), &used, &off, &n);
            EXPECT_LE(used, pending.size());
            EXPECT_LE(off + n, used);
            out.data.append(b.get() + off, n);
            out.consumed += used;
            pending.erase(0, used);
            if (out.rc != 0)
                return out;
            EXPECT_GT(used, 0u) << "no progress with input pending";
            if (used == 0)
                break;
        }
    }
    EXPECT_EQ(d.total, out.data.size());
    return out;
}

const char kChunked[] = "5\r\nhello\r\n"
                        "1A;name=value;q=\"a;b\\\"c\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                        "0;last\r\nX-Trailer: yes\r\nY: z\r\n\r\n";

TEST(H1Chunked, DecodesChunksWithExtensionsAndTrailers)
{
    Decoded r = Decode(kChunked);
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.data, "helloabcdefghijklmnopqrstuvwxyz");
    EXPECT_EQ(r.consumed, strlen(kChunked));
}

TEST(H1Chunked, StopsAtTheEndSoPipelinedBytesRemain)
{
    std::string s = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    Decoded r = Decode(s);
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.data, "abc");
    EXPECT_EQ(r.consumed, 13u);
}

TEST(H1Chunked, ReportsOneSpanPerCall)
{
    std::string s = "1\r\na\r\n1\r\nb\r\n0\r\n\r\n";
    sl_h1_chunked d = {};
    size_t used, off, n;
    ASSERT_EQ(sl_h1_chunked_feed(&d, s.data(), s.size(), &used, &off, &n), 0);
    EXPECT_EQ(std::string(s.data() + off, n), "a");
    EXPECT_EQ(used, 9u); // through the next size line, up to its data
    ASSERT_EQ(sl_h1_chunked_feed(&d, s.data() + used, s.size() - used, &used, &off, &n), 1);
}

TEST(H1Chunked, AcceptsUppercaseHexAndLeadingZeros)
{
    std::string body(0xAB, 'x');
    Decoded r = Decode("00Ab\r\n" + body + "\r\n0\r\n\r\n");
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.data, body);
}

TEST(H1Chunked, AcceptsWhitespaceOnlyBeforeAnExtension)
{
    EXPECT_EQ(Decode("1 ;x\r\na\r\n0\r\n\r\n").rc, 1);
    EXPECT_EQ(Decode("1 \r\na\r\n0\r\n\r\n").rc, SL_H1_E_MALFORMED);
}

TEST(H1Chunked, RejectsMalformedChunkSizes)
{
    for (const char *s : {"\r\n", " 1\r\na\r\n", "x\r\n", "-1\r\n", "+1\r\n", "0x1\r\na\r\n",
                          "1\na\r\n", "1\r\r\na\r\n", ";x\r\n"})
        EXPECT_EQ(Decode(s).rc, SL_H1_E_MALFORMED) << s;
}

TEST(H1Chunked, RejectsChunkSizeOverflow)
{
    EXPECT_EQ(Decode("10000000000000000\r\n").rc, SL_H1_E_MALFORMED);
    EXPECT_EQ(Decode("8000000000000000\r\n").rc, SL_H1_E_MALFORMED);
    EXPECT_EQ(Decode("7fffffffffffffff\r\n").rc, 0); // huge but representable: needs data
}

TEST(H1Chunked, RejectsMissingCrlfAfterData)
{
    EXPECT_EQ(Decode("1\r\nab\r\n0\r\n\r\n").rc, SL_H1_E_MALFORMED);
    EXPECT_EQ(Decode("1\r\na\n0\r\n\r\n").rc, SL_H1_E_MALFORMED);
    EXPECT_EQ(Decode("1\r\na\r0\r\n\r\n").rc, SL_H1_E_MALFORMED);
}

TEST(H1Chunked, RejectsControlBytesInExtensions)
{
    EXPECT_EQ(Decode(Lit("1;a=\0\r\na\r\n0\r\n\r\n")).rc, SL_H1_E_MALFORMED);
    EXPECT_EQ(Decode("1;a=\"x\ny\"\r\na\r\n0\r\n\r\n").rc, SL_H1_E_MALFORMED);
}

TEST(H1Chunked, BoundsTheChunkSizeLine)
{
    std::string ext(4096, 'a');
    EXPECT_EQ(Decode("1;" + ext + "\r\na\r\n0\r\n\r\n").rc, SL_H1_E_MALFORMED);
    EXPECT_EQ(Decode("1;" + ext.substr(0, 4000) + "\r\na\r\n0\r\n\r\n").rc, 1);
}

TEST(H1Chunked, RejectsMalformedTrailers)
{
    for (const char *t : {" X: 1\r\n\r\n", "X : 1\r\n\r\n", "X\r\n\r\n", ": 1\r\n\r\n",
                          "X: 1\n\r\n", "X: a\rb\r\n\r\n", "X: 1\r\n\n", "X: \x01\r\n\r\n"})
        EXPECT_EQ(Decode(std::string("0\r\n") + t).rc, SL_H1_E_MALFORMED) << t;
}

TEST(H1Chunked, BoundsTheTrailerSection)
{
    std::string big = "X: " + std::string(8192, 'v') + "\r\n";
    EXPECT_EQ(Decode("0\r\n" + big + "\r\n").rc, SL_H1_E_MALFORMED);
}

TEST(H1Chunked, Returns413BeyondMaxBodyBeforeTheData)
{
    EXPECT_EQ(Decode("5\r\nhello\r\n0\r\n\r\n", {}, 5).rc, 1);
    Decoded r = Decode("3\r\nabc\r\n3\r\n", {}, 5);
    EXPECT_EQ(r.rc, SL_H1_E_BODY_TOO_LARGE);
    EXPECT_EQ(r.data, "abc");
    EXPECT_EQ(Decode("ffffffff\r\n", {}, 1 << 20).rc, SL_H1_E_BODY_TOO_LARGE);
}

TEST(H1Chunked, KeepsErrorsSticky)
{
    sl_h1_chunked d = {};
    size_t used, off, n;
    ASSERT_EQ(sl_h1_chunked_feed(&d, "x", 1, &used, &off, &n), SL_H1_E_MALFORMED);
    ASSERT_EQ(sl_h1_chunked_feed(&d, "0\r\n\r\n", 5, &used, &off, &n), SL_H1_E_MALFORMED);
    EXPECT_EQ(n, 0u);
}

TEST(H1Chunked, DecodesTheSameAtEveryByteBoundary)
{
    const std::vector<std::string> inputs = {kChunked,
                                             "3\r\nabc\r\n0\r\n\r\n",
                                             "1\r\na\r\n1 \r\n",
                                             "2\r\nab\r\nzz\r\n",
                                             "0\r\nX: y\r\n\r\n",
                                             "4;a=\"b\"\r\nwxyz\r\n0\r\n\r\n"};
    for (const std::string &s : inputs) {
        Decoded one = Decode(s);
        for (size_t k = 0; k <= s.size(); k++) {
            Decoded two = Decode(s, {k});
            ASSERT_EQ(two.rc, one.rc) << s << " at " << k;
            ASSERT_EQ(two.data, one.data) << s << " at " << k;
            if (one.rc == 1) {
                ASSERT_EQ(two.consumed, one.consumed) << s << " at " << k;
            }
        }
        std::vector<size_t> every;
        for (size_t k = 1; k < s.size(); k++)
            every.push_back(k);
        Decoded bytes = Decode(s, every);
        EXPECT_EQ(bytes.rc, one.rc) << s;
        EXPECT_EQ(bytes.data, one.data) << s;
    }
}

TEST(H1Chunked, NeverReadsPastLenAtAPageBoundary)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m =
        (char *)mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    ASSERT_EQ(mprotect(m + pg, pg, PROT_NONE), 0);
    std::string s = kChunked;
    for (size_t k = 1; k <= s.size(); k++) {
        char *b = m + pg - k;
        memcpy(b, s.data(), k);
        sl_h1_chunked d = {};
        size_t used, off, n;
        int rc = sl_h1_chunked_feed(&d, b, k, &used, &off, &n);
        EXPECT_TRUE(rc == 0 || rc == 1) << k;
        EXPECT_LE(used, k);
    }
    munmap(m, 2 * pg);
}

// ---- helpers -----------------------------------------------------------

TEST(H1Helpers, ClassifiesExactlyTheRfc9110TokenCharacters)
{
    const std::string extra = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        bool want = (c < 0x80 && isalnum(c)) || (c && extra.find((char)c) != std::string::npos);
        EXPECT_EQ(sl_h1_is_tchar((unsigned char)c), want) << c;
    }
}

TEST(H1Helpers, AcceptsOnlyHeadersSafeForTheWire)
{
    EXPECT_TRUE(sl_h1_header_ok("X-A", 3, "v w\t", 4));
    EXPECT_TRUE(sl_h1_header_ok("X", 1, "", 0));
    EXPECT_FALSE(sl_h1_header_ok("", 0, "v", 1));
    EXPECT_FALSE(sl_h1_header_ok("X A", 3, "v", 1));
    EXPECT_FALSE(sl_h1_header_ok("X:", 2, "v", 1));
    EXPECT_FALSE(sl_h1_header_ok("X", 1, "a\r\nSet-Cookie: x", 17));
    EXPECT_FALSE(sl_h1_header_ok("X", 1, "a\nb", 3));
    EXPECT_FALSE(sl_h1_header_ok("X", 1, "a\0b", 3));
}

TEST(H1Helpers, KnowsTheReasonPhrases)
{
    EXPECT_STREQ(sl_h1_reason(200), "OK");
    EXPECT_STREQ(sl_h1_reason(101), "Switching Protocols");
    EXPECT_STREQ(sl_h1_reason(404), "Not Found");
    EXPECT_STREQ(sl_h1_reason(413), "Content Too Large");
    EXPECT_STREQ(sl_h1_reason(431), "Request Header Fields Too Large");
    EXPECT_STREQ(sl_h1_reason(505), "HTTP Version Not Supported");
    EXPECT_STREQ(sl_h1_reason(511), "Network Authentication Required");
    EXPECT_STREQ(sl_h1_reason(299), "");
    EXPECT_STREQ(sl_h1_reason(-1), "");
    for (int s : {100, 204, 206, 301, 304, 307, 308, 401, 403, 405, 408, 409,
                  411, 415, 416, 417, 422, 429, 500, 501, 502, 503, 504})
        EXPECT_STRNE(sl_h1_reason(s), "") << s;
}

} // namespace
