// WebSockets through the C core end to end: a real worker on loopback, a
// fake app in C++ behind the sl_ws_* seam, a raw-socket client that writes
// masked frames byte for byte. Covers the opening handshake (101, 400, 426),
// echo, control frames, protocol errors and their close codes, and both
// closing handshakes.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/listen.h"
#include "server/server.h"
#include "server/ws.h"

namespace
{

using namespace std::chrono_literals;

// ---- the fake app ----------------------------------------------------------

struct App {
    sl_app_ops ops{};
    std::mutex mu;
    std::condition_variable cv;
    std::vector<unsigned> codes; // sl_ws_close_code at each disconnect
    std::vector<int> rcs;        // return codes of interest
    bool is_ws = false;
    sl_worker *w = nullptr;

    App()
    {
        ops.on_request = OnRequest;
        ops.on_event = OnEvent;
    }

    bool WaitCodes(size_t n)
    {
        std::unique_lock<std::mutex> lk(mu);
        return cv.wait_for(lk, 5s, [&] { return codes.size() >= n; });
    }

    static void OnRequest(void *app, sl_req *r)
    {
        App *a = static_cast<App *>(app);
        const sl_h1_request *h = sl_req_head(r);
        std::string path(h->path, h->path_len);
        {
            std::lock_guard<std::mutex> lk(a->mu);
            a->is_ws = sl_req_is_websocket(r);
        }
        if (!sl_req_is_websocket(r) || path == "/deny") {
            sl_h1_header cl = {"Content-Length", 6, "6", 1};
            sl_resp_start(r, 403, &cl, 1, false);
            sl_resp_body(r, "denied", 6, false);
            sl_req_release(r);
            return;
        }
        if (path == "/late")
            sl_worker_drain(a->w); // the drain starts before the app accepts
        sl_h1_header x = {"X-Extra", 7, "yes", 3};
        int rc = sl_ws_accept(r, path == "/chat" ? "chat" : nullptr, &x, 1);
        {
            std::lock_guard<std::mutex> lk(a->mu);
            a->rcs.push_back(rc);
        }
        if (path == "/close") {
            sl_ws_close(r, 4001, "bye", 3);
            return;
        }
        if (path == "/release") {
            sl_req_release(r); // returns without closing: the core closes with 1000
            return;
        }
        Pump(a, r);
    }

    // Echoes every message it can get; releases r once the socket is over.
    static void Pump(App *a, sl_req *r)
    {
        for (;;) {
            const void *d;
            size_t len;
            bool text;
            int rc = sl_ws_recv(r, &d, &len, &text);
            if (rc == 0)
                return; // SL_REQ_BODY comes when a message is there
            if (rc < 0) {
                std::lock_guard<std::mutex> lk(a->mu);
                a->codes.push_back(sl_ws_close_code(r));
                a->cv.notify_all();
                sl_req_release(r);
                return;
            }
            std::string m(static_cast<const char *>(d), len);
            sl_ws_consume(r);
            sl_ws_send(r, text, m.data(), m.size());
        }
    }

    static void OnEvent(void *app, sl_req *r, sl_req_event ev)
    {
        if (ev == SL_REQ_BODY || ev == SL_REQ_DISCONNECT)
            Pump(static_cast<App *>(app), r);
    }
};

// ---- the server -------------------------------------------------------------

class Server
{
  public:
    explicit Server(uint64_t max_message = 1 << 20, uint32_t ping_interval_ms = 0,
                    uint32_t ping_timeout_ms = 0)
    {
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
        lc.limits.max_request_target = 8192;
        lc.limits.max_headers = 64;
        lc.timeouts = {5000, 5000, 5000, 5000, 1000, 0, 10000, 0};
        lc.websocket.max_message = max_message;
        lc.websocket.ping_interval_ms = ping_interval_ms;
        lc.websocket.ping_timeout_ms = ping_timeout_ms;
        cfg.listeners = &lc;
        cfg.nlisteners = 1;
        cfg.http.server_header = "saltare-test";
        cfg.limits = lc.limits;
        cfg.timeouts = lc.timeouts;
        cfg.websocket = lc.websocket;
        fd = sl_listen_open(&lc);
        if (fd < 0)
            return;
        w = sl_worker_new(&cfg, &fd, &app.ops, &app);
        app.w = w;
        sockaddr_in ss{};
        socklen_t len = sizeof(ss);
        getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
        port = ntohs(ss.sin_port);
        thread = std::thread([this] { sl_worker_run(w); });
    }

    ~Server()
    {
        if (thread.joinable()) {
            sl_worker_signal_drain(w);
            thread.join();
        }
        sl_worker_free(w);
        if (fd >= 0) {
            int fds[1] = {fd};
            sl_listen_close_all(&cfg, fds);
        }
    }

    App app;
    sl_listener_config lc{};
    sl_config cfg{};
    int fd = -1, port = 0;
    sl_worker *w = nullptr;
    std::thread thread;
};

// ---- the client ---------------------------------------------------------------

const uint8_t kMask[4] = {0x12, 0x34, 0x56, 0x78};

std::string Frame(uint8_t b0, const std::string &payload, bool masked = true)
{
    std::string f(1, (char)b0);
    uint64_t n = payload.size();
    uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        f += (char)(m | n);
    } else if (n <= 0xFFFF) {
        f += (char)(m | 126);
        f += (char)(n >> 8);
        f += (char)n;
    } else {
        f += (char)(m | 127);
        for (int i = 7; i >= 0; i--)
            f += (char)(n >> (8 * i));
    }
    if (masked)
        f.append((const char *)kMask, 4);
    for (size_t i = 0; i < n; i++)
        f += (char)(payload[i] ^ (masked ? kMask[i & 3] : 0));
    return f;
}

std::string CloseFrame(unsigned code, const std::string &reason = "")
{
    std::string p;
    p += (char)(code >> 8);
    p += (char)code;
    return Frame(0x88, p + reason);
}

struct ServerFrame {
    int op = -1; // -1: EOF or timeout
    bool fin = false;
    std::string payload;
    unsigned Code() const
    {
        return payload.size() >= 2 ? (uint8_t)payload[0] << 8 | (uint8_t)payload[1] : 1005;
    }
};

class Client
{
  public:
    explicit Client(int port, int rcvbuf = 0)
    {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (rcvbuf) // before connect, so the window is small from the start
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    }
    ~Client()
    {
        close(fd);
    }

    void Send(const std::string &s)
    {
        ASSERT_EQ(write(fd, s.data(), s.size()), (ssize_t)s.size());
    }

    // Reads until `pred(buffered)` or EOF/timeout; false on EOF/timeout.
    bool Fill(size_t need)
    {
        while (buf.size() < need) {
            pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 5000) != 1)
                return false;
            char tmp[65536];
            ssize_t n = read(fd, tmp, sizeof(tmp));
            if (n <= 0)
                return false;
            buf.append(tmp, (size_t)n);
        }
        return true;
    }

    // The response head (through CRLFCRLF); "" on EOF.
    std::string Head()
    {
        size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos)
            if (!Fill(buf.size() + 1))
                return "";
        std::string h = buf.substr(0, end + 4);
        buf.erase(0, end + 4);
        return h;
    }

    ServerFrame Next()
    {
        ServerFrame f;
        if (!Fill(2))
            return f;
        uint8_t b0 = buf[0], b1 = buf[1];
        EXPECT_EQ(b1 & 0x80, 0) << "server frames are never masked";
        EXPECT_EQ(b0 & 0x70, 0) << "no RSV bits";
        size_t hl = 2;
        uint64_t len = b1 & 0x7F;
        if (len == 126)
            hl = 4;
        else if (len == 127)
            hl = 10;
        if (!Fill(hl))
            return f;
        if (hl > 2) {
            len = 0;
            for (size_t i = 2; i < hl; i++)
                len = len << 8 | (uint8_t)buf[i];
        }
        if (!Fill(hl + len))
            return f;
        f.op = b0 & 0x0F;
        f.fin = b0 & 0x80;
        f.payload = buf.substr(hl, len);
        buf.erase(0, hl + len);
        return f;
    }

    // True when the server closed the TCP connection (EOF) in time.
    bool Eof()
    {
        pollfd p = {fd, POLLIN, 0};
        if (!buf.empty() || poll(&p, 1, 5000) != 1)
            return false;
        char c;
        return read(fd, &c, 1) == 0;
    }

    int fd;
    std::string buf;
};

const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";

std::string Handshake(const std::string &path, const std::string &extra = "",
                      const std::string &key = kKey, const std::string &version = "13")
{
    return "GET " + path +
           " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Key: " +
           key + "\r\nSec-WebSocket-Version: " + version + "\r\n" + extra + "\r\n";
}

// Opens a WebSocket on `path`; the 101 head goes to *head.
void Open(Client &c, const std::string &path, std::string *head = nullptr)
{
    c.Send(Handshake(path));
    std::string h = c.Head();
    ASSERT_EQ(h.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << h;
    if (head)
        *head = h;
}

// ---- handshake --------------------------------------------------------------

TEST(WsServer, AcceptsTheRfcHandshake)
{
    Server s;
    Client c(s.port);
    std::string h;
    Open(c, "/echo", &h);
    // RFC 6455 section 1.3: the accept value for the sample key.
    EXPECT_NE(h.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
              std::string::npos)
        << h;
    EXPECT_NE(h.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
    EXPECT_NE(h.find("\r\nConnection: Upgrade\r\n"), std::string::npos);
    EXPECT_NE(h.find("\r\nX-Extra: yes\r\n"), std::string::npos);
    EXPECT_EQ(h.find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(WsServer, SendsTheChosenSubprotocol)
{
    Server s;
    Client c(s.port);
    std::string h;
    Open(c, "/chat", &h);
    EXPECT_NE(h.find("\r\nSec-WebSocket-Protocol: chat\r\n"), std::string::npos) << h;
}

TEST(WsServer, OtherVersionsGet426NamingVersion13)
{
    Server s;
    for (const char *v : {"8", "12", "14", ""}) {
        Client c(s.port);
        c.Send(Handshake("/echo", "", kKey, v));
        std::string h = c.Head();
        EXPECT_EQ(h.rfind("HTTP/1.1 426 ", 0), 0u) << v << ": " << h;
        EXPECT_NE(h.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos) << h;
    }
}

TEST(WsServer, MissingOrBadKeyGets400)
{
    Server s;
    const std::string bad_keys[] = {"short", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZR=="};
    for (const std::string &k : bad_keys) {
        Client c(s.port);
        c.Send(Handshake("/echo", "", k));
        EXPECT_EQ(c.Head().rfind("HTTP/1.1 400 ", 0), 0u) << k;
    }
    Client c(s.port);
    c.Send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n");
    EXPECT_EQ(c.Head().rfind("HTTP/1.1 400 ", 0), 0u);
    Client c2(s.port);
    c2.Send(Handshake("/echo", std::string("Sec-WebSocket-Key: ") + kKey + "\r\n"));
    EXPECT_EQ(c2.Head().rfind("HTTP/1.1 400 ", 0), 0u) << "two keys";
}

TEST(WsServer, AnUpgradeOtherThanWebsocketIsPlainHttp)
{
    Server s;
    Client c(s.port);
    c.Send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n");
    EXPECT_EQ(c.Head().rfind("HTTP/1.1 403 ", 0), 0u);
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_FALSE(s.app.is_ws);
}

TEST(WsServer, TheAppMayDenyWithAnHttpResponse)
{
    Server s;
    Client c(s.port);
    c.Send(Handshake("/deny"));
    EXPECT_EQ(c.Head().rfind("HTTP/1.1 403 ", 0), 0u);
}

// ---- messages ------------------------------------------------------------------

TEST(WsServer, EchoesTextAndBinary)
{
    Server s;
    Client c(s.port);
    Open(c, "/echo");
    c.Send(Frame(0x81, "hello"));
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 1);
    EXPECT_TRUE(f.fin);
    EXPECT_EQ(f.payload, "hello");
    std::string big(200000, 'b');
    big[7] = '\0';
    c.Send(Frame(0x82, big));
    f = c.Next();
    EXPECT_EQ(f.op, 2);
    EXPECT_EQ(f.payload, big);
    c.Send(Frame(0x81, ""));
    f = c.Next();
    EXPECT_EQ(f.op, 1);
    EXPECT_EQ(f.payload, "");
}

TEST(WsServer, FramesSentWithTheHandshakeAreRead)
{
    Server s;
    Client c(s.port);
    c.Send(Handshake("/echo") + Frame(0x81, "early"));
    ASSERT_EQ(c.Head().rfind("HTTP/1.1 101 ", 0), 0u);
    EXPECT_EQ(c.Next().payload, "early");
}

TEST(WsServer, JoinsFragmentsAndAnswersPingsBetweenThem)
{
    Server s;
    Client c(s.port);
    Open(c, "/echo");
    c.Send(Frame(0x01, "frag") + Frame(0x89, "are you there"));
    ServerFrame pong = c.Next();
    EXPECT_EQ(pong.op, 0xA);
    EXPECT_EQ(pong.payload, "are you there");
    c.Send(Frame(0x00, "men") + Frame(0x80, "ted"));
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 1);
    EXPECT_EQ(f.payload, "fragmented");
}

TEST(WsServer, ByteByByteFramesAreReassembled)
{
    Server s;
    Client c(s.port);
    Open(c, "/echo");
    std::string f = Frame(0x81, "slowly \xce\xba\xcf\x8c");
    for (char ch : f) {
        c.Send(std::string(1, ch));
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(c.Next().payload, "slowly \xce\xba\xcf\x8c");
}

// ---- closing ---------------------------------------------------------------------

// The server answers a violation with a close frame carrying `code`, then
// closes TCP; the app hears the same code.
void ExpectFailure(const std::string &wire, unsigned code, uint64_t max_message = 1 << 20)
{
    Server s(max_message);
    Client c(s.port);
    Open(c, "/echo");
    c.Send(wire);
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.Code(), code);
    EXPECT_TRUE(c.Eof());
    ASSERT_TRUE(s.app.WaitCodes(1));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.codes[0], code);
}

TEST(WsServer, UnmaskedFrameCloses1002)
{
    ExpectFailure(Frame(0x81, "plain", false), 1002);
}

TEST(WsServer, ReservedBitsAndOpcodesClose1002)
{
    ExpectFailure(Frame(0xC1, "x"), 1002);
    ExpectFailure(Frame(0x83, "x"), 1002);
    ExpectFailure(Frame(0x09, "x"), 1002); // fragmented ping
    ExpectFailure(Frame(0x80, "x"), 1002); // continuation without a start
}

TEST(WsServer, InvalidUtf8Closes1007)
{
    ExpectFailure(Frame(0x81, "\xce\xba\xed\xa0\x80"), 1007);
    ExpectFailure(CloseFrame(1000, "\xff"), 1007);
}

TEST(WsServer, OversizedMessageCloses1009)
{
    ExpectFailure(Frame(0x82, std::string(1001, 'x')), 1009, 1000);
    ExpectFailure(Frame(0x01, std::string(600, 'x')) + Frame(0x80, std::string(401, 'y')), 1009,
                  1000);
}

TEST(WsServer, BadCloseCodeCloses1002)
{
    ExpectFailure(CloseFrame(1005), 1002);
    ExpectFailure(Frame(0x88, "\x03"), 1002);
}

TEST(WsServer, ClientCloseIsEchoedAndTheAppSeesItsCode)
{
    Server s;
    Client c(s.port);
    Open(c, "/echo");
    c.Send(CloseFrame(4321, "done"));
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.Code(), 4321u);
    EXPECT_TRUE(c.Eof());
    ASSERT_TRUE(s.app.WaitCodes(1));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.codes[0], 4321u);
}

TEST(WsServer, CloseWithoutCodeIsEchoedEmptyAndReported1005)
{
    Server s;
    Client c(s.port);
    Open(c, "/echo");
    c.Send(Frame(0x88, ""));
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.payload, "");
    ASSERT_TRUE(s.app.WaitCodes(1));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.codes[0], 1005u);
}

TEST(WsServer, AppCloseSendsItsCodeAndEndsOnTheClientsAnswer)
{
    Server s;
    Client c(s.port);
    Open(c, "/close");
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.Code(), 4001u);
    EXPECT_EQ(f.payload.substr(2), "bye");
    c.Send(CloseFrame(4001));
    EXPECT_TRUE(c.Eof());
}

TEST(WsServer, AnAppThatReleasesAnOpenSocketClosesIt1000)
{
    Server s;
    Client c(s.port);
    Open(c, "/release");
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.Code(), 1000u);
    c.Send(CloseFrame(1000));
    EXPECT_TRUE(c.Eof());
}

TEST(WsServer, DroppedConnectionIsReported1006)
{
    Server s;
    {
        Client c(s.port);
        Open(c, "/echo");
        c.Send(Frame(0x81, "x"));
        EXPECT_EQ(c.Next().payload, "x");
    }
    ASSERT_TRUE(s.app.WaitCodes(1));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.codes[0], 1006u);
}

TEST(WsServer, DrainSendsGoingAway)
{
    Server s;
    Client c(s.port);
    Open(c, "/echo");
    sl_worker_signal_drain(s.w);
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.Code(), 1001u);
    c.Send(CloseFrame(1001));
    EXPECT_TRUE(c.Eof());
    ASSERT_TRUE(s.app.WaitCodes(1));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.codes[0], 1001u);
}

TEST(WsServer, ASocketAcceptedDuringADrainIsClosedGoingAway)
{
    Server s;
    Client c(s.port);
    Open(c, "/late");
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 8);
    EXPECT_EQ(f.Code(), 1001u);
    c.Send(CloseFrame(1001));
    EXPECT_TRUE(c.Eof());
}

// Resident memory of this process (the server runs in it), KiB.
long RssKiB()
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(WsServer, APeerThatPingsWithoutReadingIsThrottledNotBuffered)
{
    Server s;
    // Small kernel buffers on the server's side too (inherited from the
    // listening socket), so what the server does not read stays with the
    // client and what it queues shows in its own memory.
    int small = 4096;
    setsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    Client c(s.port, 4096);
    Open(c, "/echo");
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    long before = RssKiB();
    // 32 MiB of 125-byte pings would queue about as many pong bytes if the
    // server kept reading (far more than the kernel's socket buffers take);
    // it must stop reading instead, so the writes stall.
    const size_t total = 32u << 20;
    std::string ping = Frame(0x89, std::string(125, 'p'));
    std::string burst;
    for (int i = 0; i < 512; i++)
        burst += ping;
    size_t sent = 0;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (sent < total && std::chrono::steady_clock::now() < deadline) {
        ssize_t n = write(c.fd, burst.data(), burst.size());
        if (n > 0)
            sent += (size_t)n;
        else
            std::this_thread::sleep_for(5ms);
    }
    fprintf(stderr, "sent %zu bytes of pings; RSS grew %ld KiB\n", sent, RssKiB() - before);
    EXPECT_LT(sent, total) << "the server never stopped reading";
    EXPECT_LT(RssKiB() - before, 1024) << "pongs were buffered";
}

// ---- keepalive ------------------------------------------------------------------

TEST(WsServer, PingsASilentPeerAndClosesWhenItStaysSilent)
{
    Server s(1 << 20, 100, 300);
    Client c(s.port);
    Open(c, "/echo");
    ServerFrame f = c.Next();
    EXPECT_EQ(f.op, 9);
    EXPECT_EQ(f.payload, "");
    // No pong: the connection is cut and the app told 1006.
    EXPECT_TRUE(c.Eof());
    ASSERT_TRUE(s.app.WaitCodes(1));
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_EQ(s.app.codes[0], 1006u);
}

TEST(WsServer, APeerThatAnswersPingsStaysOpen)
{
    Server s(1 << 20, 100, 300);
    Client c(s.port);
    Open(c, "/echo");
    for (int i = 0; i < 3; i++) {
        ServerFrame f = c.Next();
        ASSERT_EQ(f.op, 9) << i;
        c.Send(Frame(0x8A, f.payload));
    }
    c.Send(Frame(0x81, "still here"));
    ServerFrame f;
    do
        f = c.Next();
    while (f.op == 9);
    EXPECT_EQ(f.payload, "still here");
    std::lock_guard<std::mutex> lk(s.app.mu);
    EXPECT_TRUE(s.app.codes.empty());
}

TEST(WsServer, NoPingsWhenDisabled)
{
    Server s(1 << 20, 0, 0);
    Client c(s.port);
    Open(c, "/echo");
    pollfd p = {c.fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 500), 0) << "nothing is sent to an idle socket";
}

} // namespace
