// Unit tests for server/proxy: the PROXY protocol parser (v1 and v2), trust
// matching, and the forwarding headers (X-Forwarded-*, Forwarded, X-Real-IP).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <sys/un.h>

#include "config/config_internal.h"
#include "server/cidr.h"
#include "server/proxy.h"

namespace
{

const char kSig[] = "\r\n\r\n\0\r\nQUIT\n";

// Parses from an exact-size heap copy, so ASan flags any read past len.
int Parse(const std::string &s, sl_proxy_info *out, unsigned accept = SL_PROXY_V1 | SL_PROXY_V2)
{
    std::vector<char> buf(s.begin(), s.end());
    char *p = buf.empty() ? nullptr : buf.data();
    static char none;
    int rc = sl_proxy_parse(p ? p : &none, buf.size(), accept, out);
    // Pointers into the buffer would dangle: point at copies kept until exit.
    static std::deque<std::string> keep;
    if (rc > 0 && out->alpn)
        out->alpn = keep.emplace_back(out->alpn, out->alpn_len).data();
    if (rc > 0 && out->authority)
        out->authority = keep.emplace_back(out->authority, out->authority_len).data();
    return rc;
}

std::string Host(const sl_proxy_addr &a)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (a.sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &a.in.sin_addr, ip, sizeof(ip));
    else if (a.sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &a.in6.sin6_addr, ip, sizeof(ip));
    return ip;
}

int Port(const sl_proxy_addr &a)
{
    return ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

// A v2 header: command (0 LOCAL, 1 PROXY), family byte, address block, TLVs.
std::string V2(int cmd, int fam, const std::string &addrs, const std::string &tlvs = "",
               int version = 2)
{
    std::string h(kSig, 12);
    h += char(version << 4 | cmd);
    h += char(fam);
    size_t len = addrs.size() + tlvs.size();
    h += char(len >> 8);
    h += char(len & 0xff);
    return h + addrs + tlvs;
}

std::string Tlv(int type, const std::string &v)
{
    std::string t;
    t += char(type);
    t += char(v.size() >> 8);
    t += char(v.size() & 0xff);
    return t + v;
}

std::string Ip4Block(const char *src, const char *dst, int sport, int dport)
{
    std::string b(12, '\0');
    inet_pton(AF_INET, src, &b[0]);
    inet_pton(AF_INET, dst, &b[4]);
    b[8] = char(sport >> 8), b[9] = char(sport & 0xff);
    b[10] = char(dport >> 8), b[11] = char(dport & 0xff);
    return b;
}

std::string Ip6Block(const char *src, const char *dst, int sport, int dport)
{
    std::string b(36, '\0');
    inet_pton(AF_INET6, src, &b[0]);
    inet_pton(AF_INET6, dst, &b[16]);
    b[32] = char(sport >> 8), b[33] = char(sport & 0xff);
    b[34] = char(dport >> 8), b[35] = char(dport & 0xff);
    return b;
}

// CRC32C, independently of the parser: table-free, Castagnoli.
uint32_t Crc32c(const std::string &s)
{
    uint32_t crc = 0xffffffffu;
    for (unsigned char ch : s) {
        crc ^= ch;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

// ---- version 1 --------------------------------------------------------------

TEST(ProxyV1, ParsesTcp4AndLeavesTheRequestAfterIt)
{
    sl_proxy_info pi;
    std::string h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
    ASSERT_EQ(int(h.size()), Parse(h + "GET / HTTP/1.1\r\n", &pi));
    EXPECT_EQ(1, pi.version);
    EXPECT_FALSE(pi.local);
    EXPECT_EQ("192.0.2.7", Host(pi.src));
    EXPECT_EQ(56324, Port(pi.src));
    EXPECT_EQ("198.51.100.1", Host(pi.dst));
    EXPECT_EQ(443, Port(pi.dst));
}

TEST(ProxyV1, ParsesTcp6)
{
    sl_proxy_info pi;
    std::string h = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    ASSERT_EQ(int(h.size()), Parse(h, &pi));
    EXPECT_EQ("2001:db8::1", Host(pi.src));
    EXPECT_EQ(65535, Port(pi.src));
    EXPECT_EQ(0, Port(pi.dst));
    EXPECT_EQ(socklen_t(sizeof(sockaddr_in6)), pi.addr_len);
}

TEST(ProxyV1, UnknownKeepsTheConnectionsAddresses)
{
    sl_proxy_info pi;
    EXPECT_EQ(15, Parse("PROXY UNKNOWN\r\n", &pi));
    EXPECT_TRUE(pi.local);
    std::string h = "PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 1 2\r\n";
    EXPECT_EQ(int(h.size()), Parse(h, &pi));
    EXPECT_TRUE(pi.local);
}

TEST(ProxyV1, IsIncompleteOnEveryPrefix)
{
    sl_proxy_info pi;
    std::string h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
    for (size_t i = 0; i < h.size(); i++)
        EXPECT_EQ(SL_PROXY_INCOMPLETE, Parse(h.substr(0, i), &pi)) << i;
}

TEST(ProxyV1, RejectsMalformedLines)
{
    sl_proxy_info pi;
    const char *bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n",    // bare LF
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\rX",   // CR without LF
        "PROXY TCP4  192.0.2.7 198.51.100.1 56324 443\r\n", // double space
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 \r\n", // trailing space
        "PROXY TCP4 192.0.2.7 198.51.100.1 056324 443\r\n", // leading zero
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",  // port range
        "PROXY TCP4 192.0.2.7 198.51.100.1 +1 443\r\n",     // sign
        "PROXY TCP4 192.0.2.07 198.51.100.1 1 443\r\n",     // octal-looking
        "PROXY TCP4 2001:db8::1 198.51.100.1 1 443\r\n",    // family mismatch
        "PROXY TCP6 192.0.2.7 ::1 1 443\r\n",               // family mismatch
        "PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",          // a field short
        "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",        // not TCP
        "PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n",        // case
        "PROXY UNKNOWNX\r\n",                               // not UNKNOWN
    };
    for (const char *s : bad)
        EXPECT_EQ(SL_PROXY_E_SYNTAX, Parse(s, &pi)) << s;
}

TEST(ProxyV1, RejectsALineLongerThan107Bytes)
{
    sl_proxy_info pi;
    std::string h = "PROXY UNKNOWN " + std::string(100, 'x');
    EXPECT_EQ(SL_PROXY_E_TOO_LONG, Parse(h, &pi));
    // 107 bytes exactly, CRLF included, is the longest allowed.
    std::string ok = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
    ASSERT_EQ(107u, ok.size());
    EXPECT_EQ(107, Parse(ok, &pi));
    std::string over = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
    EXPECT_EQ(SL_PROXY_E_TOO_LONG, Parse(over, &pi));
}

TEST(ProxyParse, RejectsAnythingElseAtTheFirstWrongByte)
{
    sl_proxy_info pi;
    EXPECT_EQ(SL_PROXY_E_SIGNATURE, Parse("G", &pi));
    EXPECT_EQ(SL_PROXY_E_SIGNATURE, Parse("GET / HTTP/1.1\r\n\r\n", &pi));
    EXPECT_EQ(SL_PROXY_E_SIGNATURE, Parse("PROXX", &pi));
    EXPECT_EQ(SL_PROXY_E_SIGNATURE, Parse(std::string("\r\n\r\n\0\r\nQUIT\r", 12), &pi));
    EXPECT_EQ(SL_PROXY_INCOMPLETE, Parse("", &pi));
}

TEST(ProxyParse, HonoursTheAcceptedVersions)
{
    sl_proxy_info pi;
    std::string v1 = "PROXY UNKNOWN\r\n";
    std::string v2 = V2(0, 0, "");
    EXPECT_EQ(SL_PROXY_E_SIGNATURE, Parse(v1, &pi, SL_PROXY_V2));
    EXPECT_EQ(SL_PROXY_E_SIGNATURE, Parse(v2, &pi, SL_PROXY_V1));
    EXPECT_EQ(15, Parse(v1, &pi, SL_PROXY_V1));
    EXPECT_EQ(16, Parse(v2, &pi, SL_PROXY_V2));
}

// ---- version 2 --------------------------------------------------------------

TEST(ProxyV2, ParsesTcp4)
{
    sl_proxy_info pi;
    std::string h = V2(1, 0x11, Ip4Block("203.0.113.9", "10.0.0.1", 40000, 8443));
    ASSERT_EQ(int(h.size()), Parse(h + "GET", &pi));
    EXPECT_EQ(2, pi.version);
    EXPECT_FALSE(pi.local);
    EXPECT_EQ("203.0.113.9", Host(pi.src));
    EXPECT_EQ(40000, Port(pi.src));
    EXPECT_EQ("10.0.0.1", Host(pi.dst));
    EXPECT_EQ(8443, Port(pi.dst));
    EXPECT_FALSE(pi.ssl);
}

TEST(ProxyV2, ParsesTcp6)
{
    sl_proxy_info pi;
    std::string h = V2(1, 0x21, Ip6Block("2001:db8::42", "fd00::1", 1, 2));
    ASSERT_EQ(int(h.size()), Parse(h, &pi));
    EXPECT_EQ("2001:db8::42", Host(pi.src));
    EXPECT_EQ("fd00::1", Host(pi.dst));
    EXPECT_EQ(2, Port(pi.dst));
}

TEST(ProxyV2, LocalAndUnspecKeepTheConnectionsAddresses)
{
    sl_proxy_info pi;
    // LOCAL (a health check) may still carry an address block: skipped.
    std::string h = V2(0, 0x11, Ip4Block("1.2.3.4", "5.6.7.8", 1, 2));
    ASSERT_EQ(int(h.size()), Parse(h, &pi));
    EXPECT_TRUE(pi.local);
    EXPECT_EQ(16, Parse(V2(1, 0x00, ""), &pi));
    EXPECT_TRUE(pi.local);
    std::string un = V2(1, 0x31, std::string(216, '\0'));
    EXPECT_EQ(int(un.size()), Parse(un, &pi));
    EXPECT_TRUE(pi.local);
}

TEST(ProxyV2, IsIncompleteOnEveryPrefix)
{
    sl_proxy_info pi;
    std::string h = V2(1, 0x11, Ip4Block("1.2.3.4", "5.6.7.8", 1, 2), Tlv(0x02, "example.com"));
    for (size_t i = 0; i < h.size(); i++)
        EXPECT_EQ(SL_PROXY_INCOMPLETE, Parse(h.substr(0, i), &pi)) << i;
    EXPECT_EQ(int(h.size()), Parse(h, &pi));
}

TEST(ProxyV2, ReadsAlpnAuthorityAndSslTlvs)
{
    sl_proxy_info pi;
    std::string ssl = std::string("\x01\0\0\0\0", 5) + Tlv(0x21, "TLSv1.3");
    std::string tlvs = Tlv(0x01, "h2") + Tlv(0x02, "api.example.com") + Tlv(0x20, ssl) +
                       Tlv(0x04, std::string(3, '\0')) + Tlv(0xE0, "custom");
    std::string h = V2(1, 0x11, Ip4Block("1.2.3.4", "5.6.7.8", 1, 2), tlvs);
    ASSERT_EQ(int(h.size()), Parse(h, &pi));
    EXPECT_TRUE(pi.ssl);
    ASSERT_NE(nullptr, pi.alpn);
    EXPECT_EQ("h2", std::string(pi.alpn, pi.alpn_len));
    ASSERT_NE(nullptr, pi.authority);
    EXPECT_EQ("api.example.com", std::string(pi.authority, pi.authority_len));
}

TEST(ProxyV2, SslTlvWithoutTheClientFlagIsNotTls)
{
    sl_proxy_info pi;
    std::string ssl("\x00\0\0\0\0", 5);
    std::string h = V2(1, 0x11, Ip4Block("1.2.3.4", "5.6.7.8", 1, 2), Tlv(0x20, ssl));
    ASSERT_EQ(int(h.size()), Parse(h, &pi));
    EXPECT_FALSE(pi.ssl);
}

TEST(ProxyV2, ChecksTheCrc32c)
{
    sl_proxy_info pi;
    std::string block = Ip4Block("1.2.3.4", "5.6.7.8", 1, 2);
    std::string h = V2(1, 0x11, block, Tlv(0x03, std::string(4, '\0')));
    uint32_t crc = Crc32c(h); // computed with the checksum field zeroed
    std::string good = h;
    for (int i = 0; i < 4; i++)
        good[good.size() - 4 + i] = char(crc >> (24 - 8 * i));
    EXPECT_EQ(int(good.size()), Parse(good, &pi));
    std::string bad = good;
    bad[20] ^= 1; // one bit of the source address
    EXPECT_EQ(SL_PROXY_E_CRC, Parse(bad, &pi));
}

TEST(ProxyV2, RejectsBadHeaders)
{
    sl_proxy_info pi;
    std::string a4 = Ip4Block("1.2.3.4", "5.6.7.8", 1, 2);
    EXPECT_EQ(SL_PROXY_E_VERSION, Parse(V2(1, 0x11, a4, "", 1), &pi));
    EXPECT_EQ(SL_PROXY_E_VERSION, Parse(V2(2, 0x11, a4), &pi));
    EXPECT_EQ(SL_PROXY_E_FAMILY, Parse(V2(1, 0x12, a4), &pi)); // UDP
    EXPECT_EQ(SL_PROXY_E_FAMILY, Parse(V2(1, 0x41, a4), &pi));
    EXPECT_EQ(SL_PROXY_E_LENGTH, Parse(V2(1, 0x11, a4.substr(0, 11)), &pi));
    EXPECT_EQ(SL_PROXY_E_LENGTH, Parse(V2(1, 0x21, a4), &pi));
    // A TLV whose length runs past the block, and a stray byte after TLVs.
    std::string over = Tlv(0x01, "h2");
    over[2] = 9;
    EXPECT_EQ(SL_PROXY_E_TLV, Parse(V2(1, 0x11, a4, over), &pi));
    EXPECT_EQ(SL_PROXY_E_TLV, Parse(V2(1, 0x11, a4, Tlv(0x01, "h2") + "x"), &pi));
    EXPECT_EQ(SL_PROXY_E_TLV, Parse(V2(1, 0x11, a4, Tlv(0x20, "\x01")), &pi));
    EXPECT_EQ(SL_PROXY_E_TLV, Parse(V2(1, 0x11, a4, Tlv(0x03, "ab")), &pi));
}

// ---- trust ------------------------------------------------------------------

struct Trust {
    std::vector<sl_cidr> cidrs;
    sl_proxy_config cfg{};
    Trust(std::initializer_list<std::pair<const char *, int>> ranges, bool unix_ok = false)
    {
        for (auto &r : ranges) {
            sl_cidr c{};
            c.family = strchr(r.first, ':') ? AF_INET6 : AF_INET;
            c.bits = uint8_t(r.second);
            inet_pton(c.family, r.first, c.addr);
            cidrs.push_back(c);
        }
        cfg.cidrs.items = cidrs.data();
        cfg.cidrs.n = cidrs.size();
        cfg.cidrs.unix_ok = unix_ok;
        cfg.headers = true;
    }
};

bool Trusted(const sl_proxy_config &cfg, const char *s)
{
    sl_proxy_addr a;
    socklen_t len;
    EXPECT_EQ(0, sl_proxy_parse_addr(s, strlen(s), &a, &len)) << s;
    return sl_proxy_trusted(&cfg, &a.sa);
}

TEST(ProxyTrust, MatchesRangesByFamilyAndPrefix)
{
    Trust t({{"10.0.0.0", 8}, {"192.168.1.7", 32}, {"fd00::", 8}});
    EXPECT_TRUE(Trusted(t.cfg, "10.255.0.1"));
    EXPECT_FALSE(Trusted(t.cfg, "11.0.0.1"));
    EXPECT_TRUE(Trusted(t.cfg, "192.168.1.7"));
    EXPECT_FALSE(Trusted(t.cfg, "192.168.1.8"));
    EXPECT_TRUE(Trusted(t.cfg, "fdff::1"));
    EXPECT_FALSE(Trusted(t.cfg, "fe00::1"));
    // An IPv4 client on a dual-stack socket matches the IPv4 range.
    EXPECT_TRUE(Trusted(t.cfg, "::ffff:10.1.2.3"));
    EXPECT_FALSE(sl_proxy_trusted(&t.cfg, nullptr)); // unix not listed
    Trust u({}, true);
    EXPECT_TRUE(sl_proxy_trusted(&u.cfg, nullptr));
    EXPECT_FALSE(Trusted(u.cfg, "127.0.0.1"));
}

TEST(ProxyAddr, ParsesTheFormsProxiesWrite)
{
    sl_proxy_addr a;
    socklen_t len;
    const std::pair<const char *, std::pair<const char *, int>> ok[] = {
        {"1.2.3.4", {"1.2.3.4", 0}},         {"1.2.3.4:80", {"1.2.3.4", 80}},
        {"2001:db8::1", {"2001:db8::1", 0}}, {"[2001:db8::1]", {"2001:db8::1", 0}},
        {"[::1]:4711", {"::1", 4711}},
    };
    for (auto &c : ok) {
        ASSERT_EQ(0, sl_proxy_parse_addr(c.first, strlen(c.first), &a, &len)) << c.first;
        EXPECT_EQ(c.second.first, Host(a));
        EXPECT_EQ(c.second.second, Port(a));
    }
    for (const char *s : {"", "unknown", "_hidden", "1.2.3", "1.2.3.4:", "1.2.3.4:x", "[::1",
                          "[::1]x", "[::1]:99999", "1.2.3.4 ", "example.com"})
        EXPECT_EQ(-1, sl_proxy_parse_addr(s, strlen(s), &a, &len)) << s;
}

// ---- forwarding headers -------------------------------------------------------

struct Head {
    std::vector<std::string> store;
    std::vector<sl_h1_header> hs;
    sl_h1_request req{};
    Head(std::initializer_list<std::pair<const char *, const char *>> fields)
    {
        store.reserve(fields.size() * 2);
        for (auto &f : fields) {
            store.push_back(f.first);
            store.push_back(f.second);
        }
        for (size_t i = 0; i < store.size(); i += 2)
            hs.push_back(
                {store[i].data(), store[i].size(), store[i + 1].data(), store[i + 1].size()});
        req.headers = hs.data();
        req.nheaders = hs.size();
    }
};

sl_proxy_origin From(const Trust &t, const Head &h)
{
    sl_proxy_origin o;
    sl_proxy_from_headers(&t.cfg, &h.req, &o);
    return o;
}

TEST(ProxyHeaders, XForwardedForTakesTheRightMostUntrustedHop)
{
    Trust t({{"10.0.0.0", 8}});
    // The client can write anything at the left; our proxies append at the right.
    Head h({{"X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.0.0.3"}});
    sl_proxy_origin o = From(t, h);
    ASSERT_TRUE(o.has_client);
    EXPECT_EQ("203.0.113.5", Host(o.client));
    EXPECT_EQ(0, Port(o.client));
}

TEST(ProxyHeaders, XForwardedForSpansFieldLinesInOrder)
{
    Trust t({{"10.0.0.0", 8}});
    Head h({{"x-forwarded-for", "1.1.1.1"}, {"Host", "a"}, {"X-Forwarded-For", "10.0.0.9"}});
    sl_proxy_origin o = From(t, h);
    ASSERT_TRUE(o.has_client);
    EXPECT_EQ("1.1.1.1", Host(o.client));
}

TEST(ProxyHeaders, AllTrustedHopsGiveTheLeftMost)
{
    Trust t({{"10.0.0.0", 8}});
    Head h({{"X-Forwarded-For", "10.0.0.1, 10.0.0.2"}});
    EXPECT_EQ("10.0.0.1", Host(From(t, h).client));
}

TEST(ProxyHeaders, GarbageBeforeAnUntrustedHopMeansNoClient)
{
    Trust t({{"10.0.0.0", 8}});
    Head h({{"X-Forwarded-For", "203.0.113.5, not-an-ip, 10.0.0.3"}});
    EXPECT_FALSE(From(t, h).has_client);
    Head h2({{"X-Forwarded-For", "not-an-ip, 203.0.113.5"}});
    sl_proxy_origin o = From(t, h2); // the untrusted hop comes first from the right
    ASSERT_TRUE(o.has_client);
    EXPECT_EQ("203.0.113.5", Host(o.client));
    Head h3({{"X-Forwarded-For", "203.0.113.5,,10.0.0.3"}});
    EXPECT_FALSE(From(t, h3).has_client);
}

TEST(ProxyHeaders, ProtoAndHostUseTheirRightMostValues)
{
    Trust t({{"10.0.0.0", 8}});
    Head h({{"X-Forwarded-Proto", "http, https"}, {"X-Forwarded-Host", "evil, shop.example:8443"}});
    sl_proxy_origin o = From(t, h);
    EXPECT_FALSE(o.has_client);
    EXPECT_EQ(SL_PROXY_SCHEME_HTTPS, o.scheme);
    EXPECT_EQ("shop.example:8443", std::string(o.host, o.host_len));
    Head bad({{"X-Forwarded-Proto", "gopher"}});
    EXPECT_EQ(SL_PROXY_SCHEME_NONE, From(t, bad).scheme);
}

TEST(ProxyHeaders, XRealIpOnlyWithoutXForwardedFor)
{
    Trust t({{"10.0.0.0", 8}});
    Head h({{"X-Real-IP", "198.51.100.2"}});
    EXPECT_EQ("198.51.100.2", Host(From(t, h).client));
    Head both({{"X-Real-IP", "198.51.100.2"}, {"X-Forwarded-For", "garbage"}});
    EXPECT_FALSE(From(t, both).has_client);
}

TEST(ProxyHeaders, ForwardedWinsAndGivesTheChosenElementsProtoAndHost)
{
    Trust t({{"10.0.0.0", 8}});
    Head h({{"X-Forwarded-For", "1.1.1.1"},
            {"Forwarded", "for=6.6.6.6;proto=http, for=\"[2001:db8::7]:4711\";proto=https;"
                          "host=\"a.example\", for=10.0.0.2;proto=http"}});
    sl_proxy_origin o = From(t, h);
    ASSERT_TRUE(o.has_client);
    EXPECT_EQ("2001:db8::7", Host(o.client));
    EXPECT_EQ(4711, Port(o.client));
    EXPECT_EQ(SL_PROXY_SCHEME_HTTPS, o.scheme);
    EXPECT_EQ("a.example", std::string(o.host, o.host_len));
}

TEST(ProxyHeaders, ForwardedHiddenOrMalformedSaysNothing)
{
    Trust t({{"10.0.0.0", 8}});
    Head unknown({{"Forwarded", "for=unknown"}});
    EXPECT_FALSE(From(t, unknown).has_client);
    Head bad({{"Forwarded", "for=1.2.3.4;garbage"}});
    EXPECT_FALSE(From(t, bad).has_client);
    Head open({{"Forwarded", "for=\"[::1]:80"}});
    EXPECT_FALSE(From(t, open).has_client);
    // A hidden hop behind a trusted one: the trusted proxy is as far as we see.
    Head hidden({{"Forwarded", "for=_abc, for=10.0.0.2"}});
    sl_proxy_origin o = From(t, hidden);
    ASSERT_TRUE(o.has_client);
    EXPECT_EQ("10.0.0.2", Host(o.client));
}

TEST(ProxyHeaders, XForwardedPrefixIsAPathWithoutTrailingSlashes)
{
    Trust t({{"10.0.0.0", 8}});
    auto prefix = [&](const char *v) {
        Head h({{"X-Forwarded-Prefix", v}});
        sl_proxy_origin o = From(t, h);
        return o.prefix ? std::string(o.prefix, o.prefix_len) : std::string("<none>");
    };
    EXPECT_EQ("/api", prefix("/api"));
    EXPECT_EQ("/api/v1", prefix("/api/v1//"));
    EXPECT_EQ("", prefix("/"));
    EXPECT_EQ("/caf%C3%A9", prefix("/caf%C3%A9"));
    EXPECT_EQ("/b", prefix("/a, /b"));
    for (const char *bad : {"", "api", "/a b", "/x%zz", "/x%4", "/q?x", "/f#g", "//\x01"})
        EXPECT_EQ("<none>", prefix(bad)) << bad;
    // Also beside Forwarded, which has no prefix parameter of its own.
    Head f({{"Forwarded", "for=1.2.3.4"}, {"X-Forwarded-Prefix", "/m"}});
    sl_proxy_origin o = From(t, f);
    EXPECT_TRUE(o.has_client);
    EXPECT_EQ("/m", std::string(o.prefix, o.prefix_len));
    Head broken({{"Forwarded", "for=1.2.3.4;garbage"}, {"X-Forwarded-Prefix", "/m"}});
    sl_proxy_origin b = From(t, broken);
    EXPECT_FALSE(b.has_client);
    ASSERT_NE(nullptr, b.prefix);
    EXPECT_EQ("/m", std::string(b.prefix, b.prefix_len));
}

} // namespace

// The config's one parser of ranges (config/cidr.c) and the server's one
// matcher (server/cidr.c) agree, for proxy.trusted and route sources alike.
TEST(Cidr, ParsesRangesAndRefusesHostBitsPastThePrefix)
{
    sl_cidr c;
    EXPECT_EQ(0, sl__cidr_parse("10.0.0.0/8", &c));
    EXPECT_EQ(AF_INET, c.family);
    EXPECT_EQ(8, c.bits);
    EXPECT_EQ(0, sl__cidr_parse("::1", &c));
    EXPECT_EQ(128, c.bits);
    EXPECT_EQ(-2, sl__cidr_parse("10.0.0.1/8", &c));
    EXPECT_EQ(0, c.addr[3]); // cleared
    EXPECT_EQ(-1, sl__cidr_parse("10.0.0.0/08", &c));
    EXPECT_EQ(-1, sl__cidr_parse("10.0.0.0/33", &c));
    EXPECT_EQ(-1, sl__cidr_parse("fd00::/129", &c));
    EXPECT_EQ(-1, sl__cidr_parse("example.com", &c));
    EXPECT_EQ(-1, sl__cidr_parse("/8", &c));
    EXPECT_EQ(-1, sl__cidr_parse("10.0.0.0/", &c));
}

TEST(Cidr, MatchesUnixPeersOnlyWhenListed)
{
    sl_cidr c;
    ASSERT_EQ(0, sl__cidr_parse("172.16.0.0/12", &c));
    sl_cidr_list l = {&c, 1, false};
    sockaddr_un un = {};
    un.sun_family = AF_UNIX;
    EXPECT_FALSE(sl_cidr_contains(&l, nullptr));
    EXPECT_FALSE(sl_cidr_contains(&l, reinterpret_cast<sockaddr *>(&un)));
    l.unix_ok = true;
    EXPECT_TRUE(sl_cidr_contains(&l, reinterpret_cast<sockaddr *>(&un)));
    sl_proxy_addr a;
    socklen_t len;
    ASSERT_EQ(0, sl_proxy_parse_addr("172.31.255.255", 14, &a, &len));
    EXPECT_TRUE(sl_cidr_contains(&l, &a.sa));
    ASSERT_EQ(0, sl_proxy_parse_addr("172.32.0.0", 10, &a, &len));
    EXPECT_FALSE(sl_cidr_contains(&l, &a.sa));
    unsigned char key[16];
    EXPECT_TRUE(sl_cidr_key(&a.sa, key));
    EXPECT_EQ(0xff, key[10]);
    EXPECT_EQ(172, key[12]);
    EXPECT_FALSE(sl_cidr_key(reinterpret_cast<sockaddr *>(&un), key));
}
