// The config compiler: value types, overlays, interpolation, --set, every
// error class with its full message, check_files, print round trips.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include "config/config_internal.h"
#include "tests/config_testing.h"

namespace
{

using sltest::Load;
using sltest::Source;

const char kApp[] = "app: {target: main:app}\n";

// ---- value types, pure parsers ------------------------------------------------

uint64_t Duration(const char *s)
{
    uint64_t ms = 12345;
    EXPECT_EQ(0, sl__parse_duration(s, &ms)) << s;
    return ms;
}

TEST(ConfigDuration, AcceptsEachUnitAndBareZero)
{
    EXPECT_EQ(0u, Duration("0"));
    EXPECT_EQ(0u, Duration("0s"));
    EXPECT_EQ(250u, Duration("250ms"));
    EXPECT_EQ(5000u, Duration("5s"));
    EXPECT_EQ(120000u, Duration("2m"));
    EXPECT_EQ(3600000u, Duration("1h"));
}

TEST(ConfigDuration, RejectsBareNumbersOtherThanZero)
{
    uint64_t ms;
    EXPECT_EQ(-3, sl__parse_duration("30", &ms));
    EXPECT_EQ(-3, sl__parse_duration("1", &ms));
    EXPECT_EQ(0, sl__parse_duration("00", &ms)); // still zero
    EXPECT_EQ(0u, ms);
}

TEST(ConfigDuration, RejectsMalformedValues)
{
    uint64_t ms;
    for (const char *s : {"", "s", "5 s", "1.5s", "-1s", "5S", "1d", "5sec", "ms5", " 5s", "5s "})
        EXPECT_EQ(-1, sl__parse_duration(s, &ms)) << '"' << s << '"';
}

TEST(ConfigDuration, ReportsOverflowAsOutOfRange)
{
    uint64_t ms;
    EXPECT_EQ(-2, sl__parse_duration("99999999999999999999s", &ms));
    EXPECT_EQ(-2, sl__parse_duration("9999999999999999h", &ms));
}

std::string FormatDuration(uint64_t ms)
{
    char buf[32];
    sl__format_duration(ms, buf, sizeof(buf));
    return buf;
}

TEST(ConfigDuration, FormatsInTheLargestExactUnit)
{
    EXPECT_EQ("0", FormatDuration(0));
    EXPECT_EQ("250ms", FormatDuration(250));
    EXPECT_EQ("1500ms", FormatDuration(1500));
    EXPECT_EQ("5s", FormatDuration(5000));
    EXPECT_EQ("90s", FormatDuration(90000));
    EXPECT_EQ("2m", FormatDuration(120000));
    EXPECT_EQ("1h", FormatDuration(3600000));
    EXPECT_EQ("25h", FormatDuration(90000000));
}

uint64_t Size(const char *s)
{
    uint64_t v = 12345;
    EXPECT_EQ(0, sl__parse_size(s, &v)) << s;
    return v;
}

TEST(ConfigSize, AcceptsBytesAndBinaryAndDecimalUnits)
{
    EXPECT_EQ(0u, Size("0"));
    EXPECT_EQ(512u, Size("512"));
    EXPECT_EQ(512u, Size("512B"));
    EXPECT_EQ(64u << 10, Size("64KiB"));
    EXPECT_EQ(1u << 20, Size("1MiB"));
    EXPECT_EQ(1u << 30, Size("1GiB"));
    EXPECT_EQ(1ull << 40, Size("1TiB"));
    EXPECT_EQ(1000u, Size("1KB"));
    EXPECT_EQ(2000000u, Size("2MB"));
    EXPECT_EQ(3000000000u, Size("3GB"));
    EXPECT_EQ(1000000000000u, Size("1TB"));
}

TEST(ConfigSize, RejectsMalformedValues)
{
    uint64_t v;
    for (const char *s : {"", "lots", "1M", "1k", "1K", "1kib", "1.5MiB", "-1", "1 MiB", "MiB",
                          "0x10", "1MiBs", "+1"})
        EXPECT_EQ(-1, sl__parse_size(s, &v)) << '"' << s << '"';
}

TEST(ConfigSize, ReportsOverflowAsOutOfRange)
{
    uint64_t v;
    EXPECT_EQ(-2, sl__parse_size("99999999999999999999", &v));
    EXPECT_EQ(-2, sl__parse_size("16777216TiB", &v));
}

std::string FormatSize(uint64_t v)
{
    char buf[32];
    sl__format_size(v, buf, sizeof(buf));
    return buf;
}

TEST(ConfigSize, FormatsBinaryUnitsFirstThenDecimalThenBytes)
{
    EXPECT_EQ("0", FormatSize(0));
    EXPECT_EQ("1MiB", FormatSize(1 << 20));
    EXPECT_EQ("1000KiB", FormatSize(1024000));
    EXPECT_EQ("1KB", FormatSize(1000));
    EXPECT_EQ("1500", FormatSize(1500));
    EXPECT_EQ("1023", FormatSize(1023));
    EXPECT_EQ("2TiB", FormatSize(2ull << 40));
}

struct Addr {
    int family;
    std::string host;
    int port;
};

Addr ParseAddr(const char *s)
{
    sockaddr_storage ss;
    socklen_t len = 0;
    char host[INET6_ADDRSTRLEN] = "";
    EXPECT_EQ(0, sl__parse_addr(s, &ss, &len)) << s;
    if (ss.ss_family == AF_INET) {
        auto *a = reinterpret_cast<sockaddr_in *>(&ss);
        EXPECT_EQ(len, sizeof(*a));
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        return {AF_INET, host, ntohs(a->sin_port)};
    }
    auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
    EXPECT_EQ(len, sizeof(*a));
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return {AF_INET6, host, ntohs(a->sin6_port)};
}

TEST(ConfigAddress, ParsesNumericIPv4AndIPv6)
{
    Addr a = ParseAddr("127.0.0.1:8000");
    EXPECT_EQ(AF_INET, a.family);
    EXPECT_EQ("127.0.0.1", a.host);
    EXPECT_EQ(8000, a.port);
    a = ParseAddr("[::1]:443");
    EXPECT_EQ(AF_INET6, a.family);
    EXPECT_EQ("::1", a.host);
    EXPECT_EQ(443, a.port);
    a = ParseAddr("[::]:65535");
    EXPECT_EQ("::", a.host);
    EXPECT_EQ(65535, a.port);
}

TEST(ConfigAddress, TakesAnEmptyHostAsAllIPv4Interfaces)
{
    Addr a = ParseAddr(":8000");
    EXPECT_EQ(AF_INET, a.family);
    EXPECT_EQ("0.0.0.0", a.host);
    EXPECT_EQ(8000, a.port);
}

TEST(ConfigAddress, AcceptsPortZeroForAnEphemeralPort)
{
    EXPECT_EQ(0, ParseAddr("127.0.0.1:0").port);
}

TEST(ConfigAddress, RejectsHostNamesAndMalformedAddresses)
{
    sockaddr_storage ss;
    socklen_t len;
    for (const char *s : {"", ":", "8000", "localhost:8000", "::1:8000", "[::1]8000",
                          "[::1]:", "1.2.3:80", "1.2.3.4:", "1.2.3.4:-1", "1.2.3.4:+80", "[]:80",
                          "[fe80::1%eth0]:80", "1.2.3.4:80 ", " 1.2.3.4:80", "[::1:80"})
        EXPECT_EQ(-1, sl__parse_addr(s, &ss, &len)) << '"' << s << '"';
}

TEST(ConfigAddress, ReportsPortsAbove65535AsOutOfRange)
{
    sockaddr_storage ss;
    socklen_t len;
    EXPECT_EQ(-2, sl__parse_addr("1.2.3.4:65536", &ss, &len));
    EXPECT_EQ(-2, sl__parse_addr("[::1]:99999999999999999999999", &ss, &len));
}

TEST(ConfigTarget, AcceptsDottedModulesAndAttributes)
{
    size_t colon;
    EXPECT_EQ(0, sl__parse_target("main:app", &colon));
    EXPECT_EQ(4u, colon);
    EXPECT_EQ(0, sl__parse_target("pkg.sub_2.mod:factory.app", &colon));
    EXPECT_EQ(13u, colon);
    EXPECT_EQ(0, sl__parse_target("_x:_Y9", &colon));
}

TEST(ConfigTarget, RejectsAnythingButIdentifiers)
{
    size_t colon;
    for (const char *s : {"", "main", ":app", "main:", "1a:b", "a-b:c", "a..b:c", "a:b:c", "a.:b",
                          " a:b", "a :b", "a: b", "a:b ", "a:b()", "a/b:c"})
        EXPECT_EQ(-1, sl__parse_target(s, &colon)) << '"' << s << '"';
}

TEST(ConfigMode, ReadsDigitsAsOctal)
{
    int mode = -5;
    EXPECT_EQ(0, sl__parse_mode("0660", &mode));
    EXPECT_EQ(0660, mode);
    EXPECT_EQ(0, sl__parse_mode("660", &mode));
    EXPECT_EQ(0660, mode);
    EXPECT_EQ(0, sl__parse_mode("0o600", &mode));
    EXPECT_EQ(0600, mode);
    EXPECT_EQ(0, sl__parse_mode("0", &mode));
    EXPECT_EQ(0, mode);
    EXPECT_EQ(0, sl__parse_mode("0777", &mode));
    EXPECT_EQ(0777, mode);
}

TEST(ConfigMode, RejectsNonOctalAndSpecialBits)
{
    int mode;
    for (const char *s : {"", "rw", "0999", "0o", "0x1f", "-1", "066 0", "000000"})
        EXPECT_EQ(-1, sl__parse_mode(s, &mode)) << '"' << s << '"';
    EXPECT_EQ(-2, sl__parse_mode("1777", &mode));
    EXPECT_EQ(-2, sl__parse_mode("4755", &mode));
}

TEST(ConfigBool, AcceptsTheCoreSchemaSpellingsOnly)
{
    bool b;
    for (const char *s : {"true", "True", "TRUE"}) {
        b = false;
        EXPECT_EQ(0, sl__parse_bool(s, &b));
        EXPECT_TRUE(b);
    }
    for (const char *s : {"false", "False", "FALSE"}) {
        b = true;
        EXPECT_EQ(0, sl__parse_bool(s, &b));
        EXPECT_FALSE(b);
    }
    for (const char *s : {"", "yes", "no", "on", "off", "1", "0", "tRUE", "y"})
        EXPECT_EQ(-1, sl__parse_bool(s, &b)) << s;
}

TEST(ConfigInt, ParsesSignedDecimalsOnly)
{
    int64_t v;
    EXPECT_EQ(0, sl__parse_int("0", &v));
    EXPECT_EQ(0, v);
    EXPECT_EQ(0, sl__parse_int("-5", &v));
    EXPECT_EQ(-5, v);
    EXPECT_EQ(0, sl__parse_int("9223372036854775807", &v));
    EXPECT_EQ(INT64_MAX, v);
    EXPECT_EQ(0, sl__parse_int("-9223372036854775808", &v));
    EXPECT_EQ(INT64_MIN, v);
    for (const char *s : {"", "-", "+1", "1.0", "0x10", "1e3", "1_000", " 1", "one"})
        EXPECT_EQ(-1, sl__parse_int(s, &v)) << s;
    EXPECT_EQ(-2, sl__parse_int("9223372036854775808", &v));
}

// ---- value types through the loader (the full error lines) ---------------------

std::string Errors(const std::string &yaml, const std::vector<std::string> &sets = {},
                   const std::map<std::string, std::string> &env = {})
{
    Load load(yaml, sets, env);
    EXPECT_FALSE(load.ok()) << yaml;
    return load.errors();
}

TEST(ConfigLoad, ExplainsABadSizeWithTheSpecExample)
{
    EXPECT_EQ("test.yaml:3:13: limits.max_body: expected a size like \"1MiB\", got \"lots\"\n",
              Errors(std::string(kApp) + "limits:\n  max_body: lots\n"));
}

TEST(ConfigLoad, SaysTheRangeOfAnOutOfRangeValue)
{
    EXPECT_EQ("test.yaml:2:10: workers: expected an integer from 0 to 1024, got \"2000\"\n",
              Errors(std::string(kApp) + "workers: 2000\n"));
    EXPECT_EQ("test.yaml:2:28: limits.max_header_bytes: expected a size from 8KiB to 64KiB, got "
              "\"1KiB\"\n",
              Errors(std::string(kApp) + "limits: {max_header_bytes: 1KiB}\n"));
}

TEST(ConfigLoad, SaysTheRangeOfAnOutOfRangeDuration)
{
    EXPECT_EQ("test.yaml:2:20: timeouts.header: expected a duration from 0 to 24h, got \"25h\"\n",
              Errors(std::string(kApp) + "timeouts: {header: 25h}\n"));
}

TEST(ConfigLoad, AsksForAUnitOnABareDuration)
{
    EXPECT_EQ("test.yaml:2:18: timeouts.body: expected a duration like \"5s\", got \"30\" (add a "
              "unit: ms, s, m or h)\n",
              Errors(std::string(kApp) + "timeouts: {body: 30}\n"));
}

TEST(ConfigLoad, ListsTheAllowedValuesOfABadEnum)
{
    EXPECT_EQ("test.yaml:1:31: app.loop: expected one of auto, asyncio, uvloop, got \"trio\"\n",
              Errors("app: {target: main:app, loop: trio}\n"));
}

TEST(ConfigLoad, NamesTheKindOfAWrongTypedValue)
{
    EXPECT_EQ("test.yaml:2:10: workers: expected an integer from 0 to 1024, got a mapping\n"
              "test.yaml:3:9: limits: expected a mapping, got \"1MiB\"\n"
              "test.yaml:4:12: listeners: expected a list, got a mapping\n"
              "test.yaml:5:6: log: expected a mapping, got an empty list\n",
              Errors(std::string(kApp) + "workers: {a: 1}\nlimits: 1MiB\n"
                                         "listeners: {tcp: x}\nlog: []\n"));
}

TEST(ConfigLoad, NullGivesAKeyItsDefault)
{
    Load load(std::string(kApp) + "workers: ~\nlisteners:\ntimeouts: {header: null}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(1u, load->workers);
    ASSERT_EQ(1u, load->nlisteners);
    EXPECT_STREQ("127.0.0.1:8000", load->listeners[0].name);
    EXPECT_EQ(5000u, load->timeouts.header_ms);
}

TEST(ConfigLoad, RejectsNullForARequiredKey)
{
    EXPECT_EQ("test.yaml:1:15: app.target: expected a module:attr target like \"main:app\", got "
              "null\n",
              Errors("app: {target: ~}\n"));
}

TEST(ConfigLoad, AcceptsQuotedNumbersAndUnits)
{
    Load load(std::string(kApp) + "workers: \"4\"\nlimits: {max_body: '2MiB'}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(4u, load->workers);
    EXPECT_EQ(2u << 20, load->limits.max_body);
}

TEST(ConfigLoad, SplitsTheTargetIntoModuleAndAttribute)
{
    Load load("app: {target: pkg.api:factory.app}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("pkg.api:factory.app", load->app.target);
    EXPECT_STREQ("pkg.api", load->app.module);
    EXPECT_STREQ("factory.app", load->app.attr);
}

TEST(ConfigLoad, ExplainsABadTarget)
{
    EXPECT_EQ("test.yaml:1:15: app.target: expected a module:attr target like \"main:app\", got "
              "\"main\"\n",
              Errors("app: {target: main}\n"));
}

TEST(ConfigLoad, RejectsControlCharactersInTheServerHeader)
{
    EXPECT_EQ("test.yaml:2:23: http.server_header: expected a header value of at most 1024 bytes "
              "without control characters, got \"a\\r\\nX-Evil: 1\"\n",
              Errors(std::string(kApp) + "http: {server_header: \"a\\r\\nX-Evil: 1\"}\n"));
}

TEST(ConfigLoad, RejectsNulCharactersInStrings)
{
    EXPECT_EQ("test.yaml:1:15: app.target: expected text without NUL characters, got "
              "\"main:app\\x00\"\n",
              Errors("app: {target: \"main:app\\0\"}\n"));
}

TEST(ConfigLoad, ReadsLogAccessOffAsNull)
{
    Load off(std::string(kApp) + "log: {access: off}\n");
    ASSERT_TRUE(off.ok()) << off.errors();
    EXPECT_EQ(nullptr, off->log.access);
    Load err(std::string(kApp) + "log: {access: stderr}\n");
    ASSERT_TRUE(err.ok());
    EXPECT_STREQ("stderr", err->log.access);
    Load file(std::string(kApp) + "log: {access: /var/log/a.log}\n");
    ASSERT_TRUE(file.ok());
    EXPECT_STREQ("/var/log/a.log", file->log.access);
}

TEST(ConfigLoad, RejectsAnEmptyPath)
{
    EXPECT_EQ("test.yaml:1:31: app.venv: expected a path or null, got \"\"\n",
              Errors("app: {target: main:app, venv: \"\"}\n"));
}

TEST(ConfigLoad, AcceptsPythonOptimizeLevelsZeroToTwo)
{
    Load load(std::string(kApp) + "python: {optimize: 2}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(2u, load->python.optimize);
    EXPECT_EQ("test.yaml:2:20: python.optimize: expected an integer from 0 to 2, got \"3\"\n",
              Errors(std::string(kApp) + "python: {optimize: 3}\n"));
}

TEST(ConfigLoad, KeepsEveryMessageOnOneLine)
{
    EXPECT_EQ(
        "test.yaml:2:1: a\\x0ab: unknown key, expected one of: app, workers, routes, listeners, "
        "timeouts, limits, websocket, tcp, proxy, process, http, log, python\n",
        Errors(std::string(kApp) + "\"a\\nb\": 1\n"));
}

TEST(ConfigLoad, ExplainsThatMergeKeysAreNotSupported)
{
    EXPECT_EQ("test.yaml:3:3: limits.<<: YAML merge keys are not supported, use overlays (-c) or "
              "anchors of whole values\n",
              Errors(std::string(kApp) + "limits:\n  <<: {max_body: 1}\n"));
}

// ---- defaults ------------------------------------------------------------------------

TEST(ConfigDefaults, AreTheDocumentedValues)
{
    Load load(kApp);
    ASSERT_TRUE(load.ok()) << load.errors();
    const sl_config *c = load.cfg();
    EXPECT_EQ(0u, c->app.npath);
    EXPECT_EQ(nullptr, c->app.venv);
    EXPECT_EQ(SL_LIFESPAN_AUTO, c->app.lifespan);
    EXPECT_EQ(SL_LOOP_AUTO, c->app.loop);
    EXPECT_EQ(1u, c->workers);
    ASSERT_EQ(1u, c->nlisteners);
    EXPECT_EQ(SL_LISTENER_TCP, c->listeners[0].kind);
    EXPECT_STREQ("127.0.0.1:8000", c->listeners[0].name);
    EXPECT_EQ(-1, c->listeners[0].mode);
    auto *sin = reinterpret_cast<const sockaddr_in *>(&c->listeners[0].addr);
    EXPECT_EQ(AF_INET, sin->sin_family);
    EXPECT_EQ(htonl(INADDR_LOOPBACK), sin->sin_addr.s_addr);
    EXPECT_EQ(htons(8000), sin->sin_port);
    EXPECT_EQ(5000u, c->timeouts.header_ms);
    EXPECT_EQ(5000u, c->timeouts.keep_alive_ms);
    EXPECT_EQ(10000u, c->timeouts.handshake_ms);
    EXPECT_EQ(30000u, c->timeouts.body_ms);
    EXPECT_EQ(30000u, c->timeouts.write_ms);
    EXPECT_EQ(30000u, c->timeouts.shutdown_ms);
    EXPECT_EQ(1u << 20, c->limits.max_body);
    EXPECT_EQ(16u << 10, c->limits.max_header_bytes);
    EXPECT_EQ(100u, c->limits.max_headers);
    EXPECT_EQ(1024u, c->limits.max_connections);
    EXPECT_EQ(1000u, c->limits.max_keepalive_requests);
    EXPECT_STREQ("saltare", c->http.server_header);
    EXPECT_EQ(nullptr, c->log.access);
    EXPECT_EQ(SL_LOG_INFO, c->log.level);
    sltest::ExpectSameLimits(c->limits, c->listeners[0].limits, "default listener");
    sltest::ExpectSameTimeouts(c->timeouts, c->listeners[0].timeouts, "default listener");
}

// ---- listeners ------------------------------------------------------------------------

TEST(ConfigListeners, InheritUnsetKeysFromTheGlobalSections)
{
    Load load(std::string(kApp) + "limits: {max_body: 10MiB, max_headers: 50}\n"
                                  "timeouts: {header: 9s}\n"
                                  "listeners:\n"
                                  "  - tcp: \":8000\"\n"
                                  "    limits: {max_body: 1KiB}\n"
                                  "    timeouts: {write: 1s, handshake: 2s}\n"
                                  "  - unix: /tmp/x.sock\n"
                                  "    mode: \"0600\"\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    const sl_listener_config &a = load->listeners[0], &b = load->listeners[1];
    EXPECT_EQ(1024u, a.limits.max_body);
    EXPECT_EQ(50u, a.limits.max_headers);
    EXPECT_EQ(9000u, a.timeouts.header_ms);
    EXPECT_EQ(1000u, a.timeouts.write_ms);
    EXPECT_EQ(30000u, a.timeouts.body_ms);
    EXPECT_EQ(2000u, a.timeouts.handshake_ms);
    EXPECT_EQ(10000u, b.timeouts.handshake_ms);
    EXPECT_EQ(10u << 20, b.limits.max_body);
    EXPECT_EQ(SL_LISTENER_UNIX, b.kind);
    EXPECT_STREQ("/tmp/x.sock", b.path);
    EXPECT_STREQ("/tmp/x.sock", b.name);
    EXPECT_EQ(0600, b.mode);
    sltest::ExpectRoundTrip(load.cfg());
}

TEST(ConfigListeners, InheritGlobalValuesGivenAfterTheListInTheFile)
{
    Load load(std::string(kApp) + "listeners: [{tcp: \":1\"}]\nlimits: {max_body: 5}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(5u, load->listeners[0].limits.max_body);
}

TEST(ConfigListeners, NeedExactlyOneOfTcpOrUnix)
{
    EXPECT_EQ("test.yaml:3:5: listeners.0: expected exactly one of \"tcp\", \"unix\", \"fd\" or "
              "\"systemd\", got several\n"
              "test.yaml:4:5: listeners.1: expected exactly one of \"tcp\", \"unix\", \"fd\" or "
              "\"systemd\", got none\n",
              Errors(std::string(kApp) + "listeners:\n"
                                         "  - {tcp: \":1\", unix: /tmp/s}\n"
                                         "  - {limits: {}}\n"));
}

TEST(ConfigListeners, AllowModeOnlyWithUnix)
{
    EXPECT_EQ("test.yaml:2:31: listeners.0.mode: allowed only with \"unix\"\n",
              Errors(std::string(kApp) + "listeners: [{tcp: \":1\", mode: \"0600\"}]\n"));
}

TEST(ConfigListeners, RejectTwoListenersOnOneAddress)
{
    EXPECT_EQ("test.yaml:2:33: listeners.1.tcp: duplicate listener, same address as listeners.0\n",
              Errors(std::string(kApp) + "listeners: [{tcp: \":80\"}, {tcp: \"0.0.0.0:80\"}]\n"));
}

TEST(ConfigListeners, AllowSeveralEphemeralPorts)
{
    Load load(std::string(kApp) + "listeners: [{tcp: \":0\"}, {tcp: \":0\"}]\n");
    EXPECT_TRUE(load.ok()) << load.errors();
}

TEST(ConfigListeners, NeedAtLeastOne)
{
    EXPECT_EQ("test.yaml:2:12: listeners: expected at least 1 item, got an empty list\n",
              Errors(std::string(kApp) + "listeners: []\n"));
}

// ---- overlays ---------------------------------------------------------------------------

TEST(ConfigOverlay, MergesMapsOverridesScalarsAndReplacesLists)
{
    Load load(std::vector<Source>{
        {"base.yaml", "app: {target: main:app, path: [/a, /b], loop: asyncio}\n"
                      "limits: {max_body: 1KiB, max_headers: 10}\n"
                      "listeners: [{tcp: \":1\"}, {tcp: \":2\"}]\n"},
        {"prod.yaml", "app: {path: [/c]}\n"
                      "limits: {max_body: 2KiB}\n"
                      "listeners: [{tcp: \":3\"}]\n"},
    });
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("main:app", load->app.target);
    EXPECT_EQ(SL_LOOP_ASYNCIO, load->app.loop);
    ASSERT_EQ(1u, load->app.npath);
    EXPECT_STREQ("/c", load->app.path[0]);
    EXPECT_EQ(2048u, load->limits.max_body);
    EXPECT_EQ(10u, load->limits.max_headers);
    ASSERT_EQ(1u, load->nlisteners);
    EXPECT_STREQ(":3", load->listeners[0].name);
}

TEST(ConfigOverlay, ResetsASectionToItsDefaultsWithNull)
{
    Load load(std::vector<Source>{
        {"base.yaml", std::string(kApp) + "limits: {max_body: 1KiB}\nworkers: 4\n"},
        {"prod.yaml", "limits: ~\nworkers:\n"},
    });
    ASSERT_TRUE(load.ok()) << load.errors(); // a null key resets too
    EXPECT_EQ(1u, load->workers);
    EXPECT_EQ(1u << 20, load->limits.max_body);
    Load reset(std::vector<Source>{
        {"base.yaml", std::string(kApp) + "limits: {max_body: 1KiB}\n"},
        {"prod.yaml", "limits: ~\n"},
    });
    ASSERT_TRUE(reset.ok()) << reset.errors();
    EXPECT_EQ(1u << 20, reset->limits.max_body);
}

TEST(ConfigOverlay, AcceptsAnEmptyOverlayFile)
{
    Load load(std::vector<Source>{{"base.yaml", kApp}, {"empty.yaml", ""}});
    EXPECT_TRUE(load.ok()) << load.errors();
}

TEST(ConfigOverlay, ReportsErrorsAtTheFileThatSetTheValue)
{
    Load load(std::vector<Source>{
        {"base.yaml", std::string(kApp) + "workers: 2\n"},
        {"prod.yaml", "\n\nworkers: many\n"},
    });
    EXPECT_EQ("prod.yaml:3:10: workers: expected an integer from 0 to 1024, got \"many\"\n",
              load.errors());
}

TEST(ConfigOverlay, ReportsErrorsOfEveryFileInOrder)
{
    Load load(std::vector<Source>{
        {"a.yaml", std::string(kApp) + "limits: {max_body: x}\n"},
        {"b.yaml", "log: {level: loud}\nworkrs: 1\n"},
    });
    EXPECT_EQ("a.yaml:2:20: limits.max_body: expected a size like \"1MiB\", got \"x\"\n"
              "b.yaml:1:14: log.level: expected one of debug, info, warning, error, got "
              "\"loud\"\n"
              "b.yaml:2:1: workrs: unknown key, did you mean \"workers\"?\n",
              load.errors());
}

// ---- interpolation ---------------------------------------------------------------------

TEST(ConfigInterp, ReplacesSeveralVariablesAnywhereInAValue)
{
    Load load(std::string(kApp) + "listeners: [{tcp: \"${HOST}:${PORT}\"}]\n"
                                  "http: {server_header: \"x-${HOST}-${HOST}-y\"}\n",
              {}, {{"HOST", "10.0.0.1"}, {"PORT", "81"}});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("10.0.0.1:81", load->listeners[0].name);
    EXPECT_STREQ("x-10.0.0.1-10.0.0.1-y", load->http.server_header);
}

TEST(ConfigInterp, UsesTheDefaultWhenUnsetOrEmpty)
{
    Load load(std::string(kApp) + "workers: ${W:-3}\nhttp: {server_header: \"${E:-dflt}\"}\n", {},
              {{"E", ""}});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(3u, load->workers);
    EXPECT_STREQ("dflt", load->http.server_header);
}

TEST(ConfigInterp, KeepsAnEmptyValueWithoutADefault)
{
    Load load(std::string(kApp) + "http: {server_header: \"${E}\"}\n", {}, {{"E", ""}});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("", load->http.server_header);
}

TEST(ConfigInterp, TypesThePlainResultSoEmptyMeansNull)
{
    Load load("app:\n  target: main:app\n  venv: ${VENV:-}\n", {}, {});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(nullptr, load->app.venv);
}

TEST(ConfigInterp, TurnsDoubleDollarBraceIntoALiteral)
{
    Load load(std::string(kApp) + "http: {server_header: \"a$${B}c $$ $x $${${V}}\"}\n", {},
              {{"V", "v"}});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("a${B}c $$ $x ${v}", load->http.server_header);
    sltest::ExpectRoundTrip(load.cfg());
}

TEST(ConfigInterp, ReportsAnUnsetVariableWithoutADefault)
{
    EXPECT_EQ("test.yaml:2:10: workers: environment variable NOPE is not set and has no "
              "default\n",
              Errors(std::string(kApp) + "workers: ${NOPE}\n"));
}

/* Found by the config fuzzer: a failed value inside a list (here an SNI
 * name) is left NULL, and checks that run after the section must skip it. */
TEST(ConfigInterp, AnUnsetVariableInAnSniNameIsOneError)
{
    EXPECT_EQ("test.yaml:7:37: listeners.0.tls.sni.0.names.1: environment variable NOPE is not "
              "set and has no default\n",
              Errors(std::string(kApp) +
                     "listeners:\n"
                     "  - tcp: \"127.0.0.1:8443\"\n"
                     "    tls:\n"
                     "      cert: /c.pem\n      key: /k.pem\n"
                     "      sni: [{names: [a.example.com, \"x${NOPE}.example.com\"], cert: /c.pem, "
                     "key: /k.pem}]\n"));
}

/* Same class, found by the fuzz smoke run: list items of routes and proxy
 * whose value failed are skipped by the checks that follow. */
TEST(ConfigInterp, UnsetVariablesInRouteAndProxyListsAreOneErrorEach)
{
    std::string errs =
        Errors(std::string(kApp) +
               "routes:\n"
               "  - {path: /a, preflight: {origins: [\"${NOPE}\"], headers: [\"${NOPE}\"],\n"
               "     methods: [\"${NOPE}\"]}}\n"
               "  - {path: /b, source: [\"${NOPE}\"], methods: [\"${NOPE}\"], app: {}}\n"
               "  - {path: /c, return: {headers: [\"${NOPE}\"]}}\n"
               "proxy: {trusted: [\"${NOPE}\"]}\n");
    size_t n = 0;
    for (size_t at = 0;
         (at = errs.find("environment variable NOPE is not set", at)) != std::string::npos; at++)
        n++;
    EXPECT_EQ(7u, n) << errs;
    EXPECT_EQ(std::string::npos, errs.find("got \"(null)\"")) << errs;
}

/* Found by the config fuzzer: an unknown key in a section without keys
 * printed an uninitialised key list. */
TEST(ConfigLoad, AnUnknownKeyInASectionWithoutKeysSaysSo)
{
    EXPECT_EQ("test.yaml:2:30: routes.0.health.x: unknown key, this section takes no keys: "
              "write {}\n",
              Errors(std::string(kApp) + "routes: [{path: /h, health: {x: 1}}]\n"));
}

/* Found by the config fuzzer: a value with a newline from the environment,
 * quoted raw by a check, broke the one-line format. */
TEST(ConfigInterp, AMessageQuotingAValueWithANewlineStaysOneLine)
{
    EXPECT_EQ(
        "test.yaml:2:19: proxy.trusted.0: expected an IP address, a CIDR range like "
        "\"10.0.0.0/8\" or \"unix\", got \"host\\n\" (from ${NL})\n",
        Errors(std::string(kApp) + "proxy: {trusted: [\"host${NL}\"]}\n", {}, {{"NL", "\n"}}));
}

TEST(ConfigInterp, NamesTheVariableAValueCameFrom)
{
    EXPECT_EQ("test.yaml:3:13: limits.max_body: expected a size like \"1MiB\", got \"lots\" (from "
              "${BODY})\n",
              Errors(std::string(kApp) + "limits:\n  max_body: ${BODY}\n", {}, {{"BODY", "lots"}}));
    EXPECT_EQ("test.yaml:2:10: workers: expected an integer from 0 to 1024, got \"1x\" (from "
              "${A}, ${B})\n",
              Errors(std::string(kApp) + "workers: ${A}${B}${A}\n", {}, {{"A", ""}, {"B", "1x"}}));
}

TEST(ConfigInterp, ReportsMalformedReferences)
{
    EXPECT_EQ("test.yaml:2:23: http.server_header: unterminated \"${\" (write \"$${\" for a "
              "literal \"${\")\n"
              "test.yaml:4:11: log.access: expected a variable like ${NAME} or ${NAME:-default}, "
              "got \"${1X}\"\n"
              "test.yaml:5:20: limits.max_body: expected a variable like ${NAME} or "
              "${NAME:-default}, got \"${}\"\n",
              Errors(std::string(kApp) + "http: {server_header: \"${A\"}\n"
                                         "log:\n  access: ${1X}\n"
                                         "limits: {max_body: \"${}\"}\n"));
}

TEST(ConfigInterp, NeverExpandsKeys)
{
    EXPECT_EQ("test.yaml:2:1: ${K}: unknown key, expected one of: app, workers, routes, listeners, "
              "timeouts, limits, websocket, tcp, proxy, process, http, log, python\n",
              Errors(std::string(kApp) + "${K}: 1\n", {}, {{"K", "workers"}}));
}

TEST(ConfigInterp, ExpandsOnlyValuesThatSurviveTheOverlays)
{
    Load load(std::vector<Source>{{"base.yaml", std::string(kApp) + "workers: ${UNSET}\n"},
                                  {"prod.yaml", "workers: 2\n"}});
    EXPECT_TRUE(load.ok()) << load.errors();
}

TEST(ConfigInterp, RejectsInvalidUtf8FromTheEnvironment)
{
    EXPECT_EQ("test.yaml:2:23: http.server_header: expected UTF-8 text, got invalid bytes from "
              "the environment\n",
              Errors(std::string(kApp) + "http: {server_header: \"${X}\"}\n", {}, {{"X", "\xff"}}));
}

TEST(ConfigInterp, UsesTheProcessEnvironmentWithoutAGetenvFunction)
{
    setenv("SL_CONFIG_TEST_WORKERS", "7", 1);
    sl_cfg_source src = {"env.yaml",
                         "app: {target: main:app}\nworkers: ${SL_CONFIG_TEST_WORKERS}\n"};
    sl_cfg_input in = {};
    in.sources = &src;
    in.nsources = 1;
    sl_diags d;
    sl_diags_init(&d);
    const sl_config *cfg = sl_cfg_load(&in, &d);
    ASSERT_NE(cfg, nullptr);
    EXPECT_EQ(7u, cfg->workers);
    sl_cfg_free(cfg);
    sl_diags_release(&d);
    unsetenv("SL_CONFIG_TEST_WORKERS");
}

// ---- --set --------------------------------------------------------------------------------

TEST(ConfigSet, OverridesAfterEveryFile)
{
    Load load(std::vector<Source>{{"a.yaml", std::string(kApp) + "workers: 2\n"},
                                  {"b.yaml", "workers: 3\n"}},
              {"workers=4"});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(4u, load->workers);
}

TEST(ConfigSet, IndexesListsAndAppendsOnePastTheEnd)
{
    Load load(std::string(kApp) + "listeners: [{tcp: \":1\"}]\n",
              {"listeners.0.tcp=:9000", "listeners.1.unix=/tmp/s", "listeners.1.mode=0600"});
    ASSERT_TRUE(load.ok()) << load.errors();
    ASSERT_EQ(2u, load->nlisteners);
    EXPECT_STREQ(":9000", load->listeners[0].name);
    EXPECT_STREQ("/tmp/s", load->listeners[1].path);
    EXPECT_EQ(0600, load->listeners[1].mode);
}

TEST(ConfigSet, CreatesMissingKeysAndLists)
{
    Load load(std::vector<Source>{}, {"app.target=main:app", "listeners.0.tcp=:9000",
                                      "limits.max_body=2MiB", "app.path=[/a, /b]"});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("main:app", load->app.target);
    ASSERT_EQ(1u, load->nlisteners);
    EXPECT_STREQ(":9000", load->listeners[0].name);
    EXPECT_EQ(2u << 20, load->limits.max_body);
    ASSERT_EQ(2u, load->app.npath);
    EXPECT_STREQ("/b", load->app.path[1]);
}

TEST(ConfigSet, MergesAFlowMappingLikeAnOverlay)
{
    Load load(std::string(kApp) + "limits: {max_body: 1KiB, max_headers: 5}\n",
              {"limits={max_headers: 6}"});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(1024u, load->limits.max_body);
    EXPECT_EQ(6u, load->limits.max_headers);
}

TEST(ConfigSet, ReadsAnEmptyValueAsNullAndQuotesAsAString)
{
    Load load("app: {target: main:app, venv: /x}\n", {"app.venv=", "http.server_header=\"\""});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(nullptr, load->app.venv);
    EXPECT_STREQ("", load->http.server_header);
}

TEST(ConfigSet, NamesTheArgumentInsteadOfAPosition)
{
    EXPECT_EQ("--set limits.max_body=lots: limits.max_body: expected a size like \"1MiB\", got "
              "\"lots\"\n",
              Errors(kApp, {"limits.max_body=lots"}));
    EXPECT_EQ("--set limts.max_body=1: limts: unknown key, did you mean \"limits\"?\n",
              Errors(kApp, {"limts.max_body=1"}));
}

TEST(ConfigSet, ReportsBadIndexesAndPaths)
{
    EXPECT_EQ("--set listeners.2.tcp=:1: listeners.2: expected a list index from 0 to 1, got "
              "\"2\"\n"
              "--set listeners.x=1: listeners.x: expected a list index from 0 to 1, got \"x\"\n"
              "--set nothing: expected key.path=value\n"
              "--set a..b=1: expected key.path=value, got an empty key in \"a..b\"\n"
              "--set =1: expected key.path=value\n"
              "--set a.=1: expected key.path=value, got an empty key in \"a.\"\n",
              Errors(std::string(kApp) + "listeners: [{tcp: \":1\"}]\n",
                     {"listeners.2.tcp=:1", "listeners.x=1", "nothing", "a..b=1", "=1", "a.=1"}));
}

TEST(ConfigSet, ReportsAValueThatIsNotYaml)
{
    EXPECT_EQ("--set listeners.0.tcp=[::1]:80: syntax error in the value: did not find expected "
              "node content (while parsing a flow node); quote a value that is a plain string "
              "(key='\"...\"')\n",
              Errors(kApp, {"listeners.0.tcp=[::1]:80"}));
}

TEST(ConfigSet, ExpandsVariablesInTheValue)
{
    Load load(kApp, {"workers=${N}"}, {{"N", "5"}});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_EQ(5u, load->workers);
}

// ---- error classes -------------------------------------------------------------------------

TEST(ConfigErrors, SuggestTheNearestKeyForATypo)
{
    EXPECT_EQ("test.yaml:2:1: timeout: unknown key, did you mean \"timeouts\"?\n"
              "test.yaml:3:1: Listeners: unknown key, did you mean \"listeners\"?\n"
              "test.yaml:4:10: limits.max_bdy: unknown key, did you mean \"max_body\"?\n",
              Errors(std::string(kApp) + "timeout: {}\nListeners: []\nlimits: {max_bdy: 1}\n"));
}

TEST(ConfigErrors, SuggestAKeyOfTheSameNameInASubsection)
{
    EXPECT_EQ("test.yaml:2:1: max_body: unknown key, did you mean \"limits.max_body\"?\n"
              "test.yaml:3:25: listeners.0.header: unknown key, did you mean "
              "\"timeouts.header\"?\n",
              Errors(std::string(kApp) + "max_body: 1\nlisteners: [{tcp: \":1\", header: 1s}]\n"));
}

TEST(ConfigErrors, ListTheKnownKeysWhenNothingIsClose)
{
    EXPECT_EQ("test.yaml:1:25: app.frobnicate: unknown key, expected one of: target, path, venv, "
              "lifespan, loop, root_path, preload\n",
              Errors("app: {target: main:app, frobnicate: 1}\n"));
}

TEST(ConfigErrors, ReportDuplicateKeysAndKeepCompiling)
{
    EXPECT_EQ("test.yaml:4:3: limits.max_body: duplicate key, first defined at line 3\n"
              "test.yaml:5:10: workers: expected an integer from 0 to 1024, got \"x\"\n",
              Errors(std::string(kApp) + "limits:\n  max_body: 1\n  max_body: 2\nworkers: x\n"));
}

TEST(ConfigErrors, PlaceAMissingRequiredKeyAtItsMapping)
{
    EXPECT_EQ("test.yaml:3:3: app.target: missing required key, expected a module:attr target "
              "like \"main:app\"\n",
              Errors("workers: 1\napp:\n  path: []\n"));
    EXPECT_EQ("test.yaml:2:1: app.target: missing required key, expected a module:attr target "
              "like \"main:app\"\n",
              Errors("# no app at all\nworkers: 1\n"));
    EXPECT_EQ("test.yaml:1:1: app.target: missing required key, expected a module:attr target "
              "like \"main:app\"\n",
              Errors(""));
}

TEST(ConfigErrors, PassOnLibyamlSyntaxErrorsWithTheirPosition)
{
    EXPECT_EQ("test.yaml:3:1: syntax error: did not find expected ',' or ']' (while parsing a "
              "flow sequence at line 1, column 10)\n",
              Errors("workers: [1, 2\n\n"));
    EXPECT_EQ("test.yaml:2:15: syntax error: mapping values are not allowed in this context\n",
              Errors("app:\n  target: main: app\n"));
}

TEST(ConfigErrors, ReportAnUnreadableFile)
{
    Load load(std::vector<Source>{{"/nonexistent/saltare.yaml", "", true}});
    EXPECT_FALSE(load.ok());
    EXPECT_EQ("/nonexistent/saltare.yaml: cannot read: No such file or directory\n", load.errors());
    Load dir(std::vector<Source>{{"/", "", true}});
    EXPECT_EQ("/: cannot read: Is a directory\n", dir.errors());
}

TEST(ConfigErrors, ReportATopLevelThatIsNotAMapping)
{
    EXPECT_EQ("test.yaml:1:1: expected a mapping at the top level, got a list\n",
              Errors("- a\n- b\n"));
}

TEST(ConfigErrors, ReportEveryErrorOfARun)
{
    Load load("app: {target: x, loop: y}\nworkers: z\nlimits: {max_body: w}\nbogus: 1\n");
    EXPECT_FALSE(load.ok());
    EXPECT_EQ(5u, load.count()) << load.errors();
}

TEST(ConfigErrors, KeepAtMostTheMaximumAndCountTheRest)
{
    std::string yaml = kApp;
    for (int i = 0; i < SL_DIAG_MAX + 6; i++)
        yaml += "unknown_" + std::to_string(1000 + i) + ": 1\n";
    Load load(yaml);
    EXPECT_EQ((size_t)SL_DIAG_MAX, load.count());
    EXPECT_NE(std::string::npos, load.errors().find("\n(6 more errors)\n"));
    EXPECT_EQ(0u, load.errors().find("test.yaml:2:1: unknown_1000: unknown key"));
}

TEST(ConfigErrors, StopAliasExpansionBombs)
{
    std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'h'; c++)
        yaml += std::string(1, c) + ": &" + c + " [*" + (char)(c - 1) + ", *" + (char)(c - 1) +
                ", *" + (char)(c - 1) + ", *" + (char)(c - 1) + ", *" + (char)(c - 1) + ", *" +
                (char)(c - 1) + ", *" + (char)(c - 1) + ", *" + (char)(c - 1) + ", *" +
                (char)(c - 1) + ", *" + (char)(c - 1) + "]\n";
    std::string errors = Errors(yaml);
    EXPECT_NE(std::string::npos, errors.find("document too large: more than 100000 nodes"))
        << errors;
}

TEST(ConfigErrors, StopDeepNesting)
{
    std::string yaml = "a: " + std::string(100, '[') + std::string(100, ']') + "\n";
    EXPECT_EQ(
        "test.yaml:1:67: a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0: nesting deeper than 64 "
        "levels\n",
        Errors(yaml));
}

// ---- check_files (-t) ------------------------------------------------------------------------

class ConfigCheckFiles : public testing::Test
{
  protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/sl_config_test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        ASSERT_EQ(0, mkdir((dir_ + "/venv").c_str(), 0755));
        FILE *f = fopen((dir_ + "/file").c_str(), "w");
        ASSERT_NE(f, nullptr);
        fclose(f);
    }
    void TearDown() override
    {
        unlink((dir_ + "/file").c_str());
        rmdir((dir_ + "/venv").c_str());
        rmdir(dir_.c_str());
    }
    std::string Check(const std::string &yaml)
    {
        Load load(std::vector<Source>{{"t.yaml", yaml}}, {}, {}, true);
        return load.errors();
    }
    std::string dir_;
};

TEST_F(ConfigCheckFiles, AcceptsWhatExists)
{
    EXPECT_EQ("", Check("app: {target: m:a, venv: " + dir_ + "/venv, path: [" + dir_ + ", " + dir_ +
                        "/file]}\n"
                        "listeners: [{unix: " +
                        dir_ +
                        "/s.sock}]\n"
                        "log: {access: " +
                        dir_ + "/access.log}\n"));
}

TEST_F(ConfigCheckFiles, ReportsWhatIsMissing)
{
    std::string d = dir_;
    EXPECT_EQ("t.yaml:1:26: app.venv: expected an existing directory, got \"" + d +
                  "/nope\" (No such file or directory)\n",
              Check("app: {target: m:a, venv: " + d + "/nope}\n"));
    EXPECT_EQ("t.yaml:1:26: app.venv: expected an existing directory, got \"" + d +
                  "/file\" (Not a directory)\n",
              Check("app: {target: m:a, venv: " + d + "/file}\n"));
    EXPECT_EQ("t.yaml:1:30: app.path.1: expected an existing path, got \"" + d +
                  "/nope\" (No such file or directory)\n",
              Check("app: {target: m:a, path: [/, " + d + "/nope]}\n"));
    EXPECT_EQ("t.yaml:2:20: listeners.0.unix: expected a path in an existing directory, got \"" +
                  d + "/nope/s.sock\" (No such file or directory)\n",
              Check("app: {target: m:a}\nlisteners: [{unix: " + d + "/nope/s.sock}]\n"));
    EXPECT_EQ("t.yaml:2:15: log.access: expected a file in a writable directory, got \"" + d +
                  "/nope/a.log\" (No such file or directory)\n",
              Check("app: {target: m:a}\nlog: {access: " + d + "/nope/a.log}\n"));
}

TEST_F(ConfigCheckFiles, IsOffUnlessAsked)
{
    Load load("app: {target: m:a, venv: /nonexistent}\n");
    EXPECT_TRUE(load.ok()) << load.errors();
}

// ---- printing ---------------------------------------------------------------------------------

TEST(ConfigPrint, PrintsEveryKeyWithDefaults)
{
    Load load(kApp);
    ASSERT_TRUE(load.ok());
    EXPECT_EQ("app:\n"
              "  target: \"main:app\"\n"
              "  path: []\n"
              "  venv: null\n"
              "  lifespan: auto\n"
              "  loop: auto\n"
              "  root_path: \"\"\n"
              "  preload: auto\n"
              "workers: 1\n"
              "routes: []\n"
              "listeners:\n"
              "  - tcp: \"127.0.0.1:8000\"\n"
              "    name: null\n"
              "    backlog: 1024\n"
              "    reuseport: false\n"
              "timeouts:\n"
              "  header: 5s\n"
              "  handshake: 10s\n"
              "  keep_alive: 5s\n"
              "  body: 30s\n"
              "  write: 30s\n"
              "  app: 0\n"
              "  shutdown: 30s\n"
              "  startup: 1m\n"
              "limits:\n"
              "  max_body: 1MiB\n"
              "  max_header_bytes: 16KiB\n"
              "  max_request_target: 8KiB\n"
              "  max_headers: 100\n"
              "  max_connections: 1024\n"
              "  max_keepalive_requests: 1000\n"
              "  max_connections_per_ip: 0\n"
              "  concurrency: 0\n"
              "  max_connection_lifetime: 0\n"
              "  rate:\n"
              "    per_sec: 0\n"
              "    burst: 0\n"
              "websocket:\n"
              "  max_message: 1MiB\n"
              "  ping_interval: 20s\n"
              "  ping_timeout: 20s\n"
              "  max_queue: 16\n"
              "  compression: deflate\n"
              "tcp:\n"
              "  nodelay: true\n"
              "  keepalive:\n"
              "    idle: 0\n"
              "    interval: 0\n"
              "    count: 0\n"
              "  user_timeout: 0\n"
              "  fastopen: 0\n"
              "  defer_accept: 0\n"
              "proxy:\n"
              "  trusted: []\n"
              "  headers: false\n"
              "  protocol: off\n"
              "process:\n"
              "  raise_nofile: false\n"
              "  max_requests: 0\n"
              "  max_requests_jitter: 0\n"
              "  max_rss: 0\n"
              "  crash_limit: 5\n"
              "  crash_window: 1m\n"
              "  user: null\n"
              "  group: null\n"
              "  pid_file: null\n"
              "http:\n"
              "  server_header: \"saltare\"\n"
              "  request_id:\n"
              "    header: null\n"
              "    trust_incoming: false\n"
              "  server_timing: false\n"
              "log:\n"
              "  access: off\n"
              "  error: stderr\n"
              "  level: info\n"
              "  access_format: json\n"
              "  access_template: null\n"
              "  time_format: rfc3339\n"
              "python:\n"
              "  optimize: 0\n",
              sltest::Print(load.cfg()));
}

TEST(ConfigPrint, RoundTripsAwkwardStrings)
{
    Load load(std::string(kApp) + "http: {server_header: \"${S}\"}\n", {},
              {{"S", "q\"b\\s $${x} ${y} \t \xc2\x80 \xe2\x80\xa8 \xef\xbb\xbf \xf0\x9f\x98\x80"}});
    ASSERT_TRUE(load.ok()) << load.errors();
    EXPECT_STREQ("q\"b\\s $${x} ${y} \t \xc2\x80 \xe2\x80\xa8 \xef\xbb\xbf \xf0\x9f\x98\x80",
                 load->http.server_header);
    sltest::ExpectRoundTrip(load.cfg());
}

TEST(ConfigPrint, RoundTripsEveryNonDefaultValue)
{
    Load load("app:\n  target: a.b:c.d\n  path: [x, \"y z\"]\n  venv: /v\n  lifespan: off\n"
              "  loop: asyncio\n"
              "  preload: auto\n"
              "workers: 0\n"
              "listeners:\n"
              "  - tcp: \"[::1]:1\"\n    timeouts: {header: 1ms}\n"
              "  - unix: /tmp/u.sock\n    mode: 0\n    limits: {max_body: 0}\n"
              "timeouts: {header: 0, handshake: 3s, keep_alive: 1h, body: 2m, write: 1500ms, "
              "app: 90s, shutdown: 24h}\n"
              "limits: {max_body: 1TiB, max_header_bytes: 8KiB, max_headers: 1, "
              "max_connections: 1000000, max_keepalive_requests: 0}\n"
              "http: {server_header: \"\"}\n"
              "log: {access: stderr, level: error}\n"
              "python: {optimize: 2}\n");
    ASSERT_TRUE(load.ok()) << load.errors();
    sltest::ExpectRoundTrip(load.cfg());
}

TEST(ConfigFree, AcceptsNull)
{
    sl_cfg_free(nullptr);
}

// ---- schema outputs -------------------------------------------------------------------------

// A strict JSON well-formedness check (RFC 8259 grammar, no extensions).
class Json
{
  public:
    explicit Json(const std::string &s) : s_(s) {}
    bool Valid()
    {
        Ws();
        return Value() && (Ws(), i_ == s_.size());
    }

  private:
    void Ws()
    {
        while (i_ < s_.size() && strchr(" \t\r\n", s_[i_]))
            i_++;
    }
    bool Lit(const char *w)
    {
        size_t n = strlen(w);
        if (s_.compare(i_, n, w) != 0)
            return false;
        i_ += n;
        return true;
    }
    bool String()
    {
        if (!Lit("\""))
            return false;
        while (i_ < s_.size() && s_[i_] != '"') {
            if ((unsigned char)s_[i_] < 0x20)
                return false;
            if (s_[i_] == '\\') {
                i_++;
                if (i_ >= s_.size() || !strchr("\"\\/bfnrtu", s_[i_]))
                    return false;
            }
            i_++;
        }
        return Lit("\"");
    }
    bool Number()
    {
        size_t start = i_;
        Lit("-");
        while (i_ < s_.size() && isdigit((unsigned char)s_[i_]))
            i_++;
        return i_ > start && isdigit((unsigned char)s_[i_ - 1]);
    }
    template <typename F> bool Items(char close, F item)
    {
        Ws();
        if (Lit(std::string(1, close).c_str()))
            return true;
        do {
            Ws();
            if (!item())
                return false;
            Ws();
        } while (Lit(","));
        return Lit(std::string(1, close).c_str());
    }
    bool Value()
    {
        if (Lit("{"))
            return Items('}', [&] { return String() && (Ws(), Lit(":")) && (Ws(), Value()); });
        if (Lit("["))
            return Items(']', [&] { return Value(); });
        if (i_ < s_.size() && s_[i_] == '"')
            return String();
        return Lit("true") || Lit("false") || Lit("null") || Number();
    }
    const std::string &s_;
    size_t i_ = 0;
};

TEST(ConfigSchema, IsWellFormedJsonOfDraft2020)
{
    std::string schema = sltest::Capture([](FILE *f) { sl_cfg_print_schema(f); });
    EXPECT_TRUE(Json(schema).Valid()) << schema;
    EXPECT_NE(std::string::npos,
              schema.find("\"$schema\": \"https://json-schema.org/draft/2020-12/schema\""));
    EXPECT_NE(std::string::npos, schema.find("\"required\": [\"target\"]"));
    EXPECT_NE(std::string::npos,
              schema.find("\"oneOf\": [{\"required\": [\"tcp\"]}, "
                          "{\"required\": [\"unix\"]}, {\"required\": [\"fd\"]}, "
                          "{\"required\": [\"systemd\"]}]"));
}

// Every key of the table appears in the schema and the docs.
void ForEachKeyPath(const sl__section *sec, const std::string &prefix,
                    const std::function<void(const std::string &, const sl__key &)> &fn)
{
    for (size_t i = 0; i < sec->nkeys; i++) {
        const sl__key &k = sec->keys[i];
        fn(prefix + k.name, k);
        if ((k.shape == SL__SECTION || k.shape == SL__SECTIONS) && !(k.flags & SL__INHERIT))
            ForEachKeyPath(k.section, prefix + k.name + (k.shape == SL__SECTIONS ? "[]." : "."),
                           fn);
    }
}

TEST(ConfigSchema, DocumentsEveryKey)
{
    std::string docs = sltest::Capture([](FILE *f) { sl_cfg_print_docs(f); });
    std::string schema = sltest::Capture([](FILE *f) { sl_cfg_print_schema(f); });
    size_t n = 0;
    ForEachKeyPath(&sl__schema_root, "", [&](const std::string &path, const sl__key &k) {
        n++;
        EXPECT_NE(std::string::npos, docs.find("| `" + path + "` |")) << path;
        EXPECT_NE(std::string::npos, schema.find("\"" + std::string(k.name) + "\": {")) << path;
        EXPECT_TRUE(k.doc && *k.doc) << path;
    });
    EXPECT_GE(n, 28u);
}

// A default is written the way --print-config prints it: canonical form.
TEST(ConfigSchema, WritesDefaultsInCanonicalForm)
{
    Load load(kApp);
    ASSERT_TRUE(load.ok());
    std::string printed = sltest::Print(load.cfg());
    ForEachKeyPath(&sl__schema_root, "", [&](const std::string &path, const sl__key &k) {
        if (k.shape != SL__SCALAR || !k.def || path.find("[]") != std::string::npos)
            return;
        std::string line = std::string(" ") + k.name + ": " + k.def + "\n";
        if (path.find('.') == std::string::npos)
            line = std::string(k.name) + ": " + k.def + "\n";
        EXPECT_NE(std::string::npos, printed.find(line)) << path << " default " << k.def;
    });
}

} // namespace

// ---- TLS ----------------------------------------------------------------------------------------

namespace
{

std::vector<std::string> g_tls_checks;

// Files named "bad*" fail; a key named "nomatch*" does not match its cert.
int FakeCheckTls(int what, const char *file, const char *key, char *err, size_t cap)
{
    g_tls_checks.push_back(std::to_string(what) + ":" + file + (key ? std::string(",") + key : ""));
    if (strncmp(file, "/dev/null/bad", 13) == 0 || strncmp(file, "bad", 3) == 0) {
        snprintf(err, cap, "cannot load");
        return -1;
    }
    if (key && strstr(key, "nomatch")) {
        snprintf(err, cap, "key values mismatch");
        return -2;
    }
    return 0;
}

} // namespace

TEST(ConfigTls, AsksTheProgramToCheckCertsAndPointsAtTheKey)
{
    std::string dir = ::testing::TempDir();
    std::string cert = dir + "/c.pem", key = dir + "/nomatch.key", sni = dir + "/s.pem";
    for (const auto &f : {cert, key, sni})
        std::ofstream(f) << "x";
    sltest::CheckTls() = FakeCheckTls;
    g_tls_checks.clear();
    sltest::Load load(
        std::vector<sltest::Source>{{"test.yaml", std::string(kApp) +
                                                      "listeners:\n"
                                                      "  - tcp: \":1\"\n"
                                                      "    tls:\n"
                                                      "      cert: " +
                                                      cert +
                                                      "\n"
                                                      "      key: " +
                                                      key +
                                                      "\n"
                                                      "      ciphersuites: bad-suite\n"
                                                      "      ktls: true\n"
                                                      "      sni: [{names: [a.b], cert: " +
                                                      sni + ", key: " + sni + "}]\n"}},
        {}, {}, true);
    sltest::CheckTls() = nullptr;
    EXPECT_EQ("test.yaml:6:12: listeners.0.tls.key: " + key +
                  ": key values mismatch\n"
                  "test.yaml:7:21: listeners.0.tls.ciphersuites: bad-suite: cannot load\n",
              load.errors());
    EXPECT_EQ((std::vector<std::string>{"0:" + sni + "," + sni, "0:" + cert + "," + key,
                                        "4:bad-suite", "5:listeners.0.tls.ktls"}),
              g_tls_checks);
}

TEST(ConfigTls, NeedsCertForAnyOtherKey)
{
    EXPECT_EQ("test.yaml:3:23: listeners.0.tls.verify_client: needs \"cert\" as well (TLS is on "
              "only with a certificate)\n"
              "test.yaml:3:38: listeners.0.tls.verify_client: needs \"client_ca\"\n",
              Errors(std::string(kApp) + "listeners:\n  - {tcp: \":1\", tls: {verify_client: "
                                         "required}}\n"));
    Load empty(std::string(kApp) + "listeners:\n  - {tcp: \":1\", tls: {sni: [], cert: null}}\n");
    EXPECT_TRUE(empty.ok()) << empty.errors();
}
