// Listeners: systemd fd matching, the socket-activation environment, Unix
// sockets (stale, live, abstract) and TCP options inherited by accepted
// sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>

#include "server/listen.h"

namespace
{

std::map<std::string, std::string> g_env;

const char *FakeEnv(const char *name)
{
    auto it = g_env.find(name);
    return it == g_env.end() ? nullptr : it->second.c_str();
}

int SdEnv(long pid, sl_sd_fd *out, size_t max, std::string *err)
{
    static char names[4096];
    char e[512] = "";
    int n = sl_listen_sd_env(FakeEnv, pid, out, max, names, sizeof(names), e, sizeof(e));
    *err = e;
    return n;
}

sl_listener_config Tcp(const char *addr, uint16_t port)
{
    sl_listener_config l{};
    l.kind = SL_LISTENER_TCP;
    l.name = addr;
    auto *in = reinterpret_cast<sockaddr_in *>(&l.addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    inet_pton(AF_INET, addr, &in->sin_addr);
    l.addrlen = sizeof(sockaddr_in);
    return l;
}

sl_listener_config Systemd(const char *name)
{
    sl_listener_config l{};
    l.kind = SL_LISTENER_SYSTEMD;
    l.systemd = name;
    l.name = name;
    return l;
}

sl_sd_fd Passed(int fd, const char *name, const char *ip, uint16_t port)
{
    sl_sd_fd f{};
    f.fd = fd;
    f.name = name;
    auto *in = reinterpret_cast<sockaddr_in *>(&f.addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    inet_pton(AF_INET, ip, &in->sin_addr);
    f.addrlen = sizeof(sockaddr_in);
    return f;
}

} // namespace

TEST(ListenSdEnv, ReadsCountAndNamesForThisPid)
{
    g_env = {{"LISTEN_PID", "42"}, {"LISTEN_FDS", "3"}, {"LISTEN_FDNAMES", "web:admin:"}};
    sl_sd_fd fds[8];
    std::string err;
    ASSERT_EQ(3, SdEnv(42, fds, 8, &err)) << err;
    EXPECT_EQ(3, fds[0].fd);
    EXPECT_STREQ("web", fds[0].name);
    EXPECT_EQ(4, fds[1].fd);
    EXPECT_STREQ("admin", fds[1].name);
    EXPECT_EQ(5, fds[2].fd);
    EXPECT_STREQ("unknown", fds[2].name);
}

TEST(ListenSdEnv, IgnoresFdsMeantForAnotherProcess)
{
    g_env = {{"LISTEN_PID", "41"}, {"LISTEN_FDS", "2"}};
    sl_sd_fd fds[8];
    std::string err;
    EXPECT_EQ(0, SdEnv(42, fds, 8, &err));
    g_env = {{"LISTEN_FDS", "2"}};
    EXPECT_EQ(0, SdEnv(42, fds, 8, &err));
}

TEST(ListenSdEnv, RejectsGarbage)
{
    g_env = {{"LISTEN_PID", "42"}, {"LISTEN_FDS", "two"}};
    sl_sd_fd fds[8];
    std::string err;
    EXPECT_EQ(-EINVAL, SdEnv(42, fds, 8, &err));
    EXPECT_NE(std::string::npos, err.find("LISTEN_FDS=two")) << err;
    g_env = {{"LISTEN_PID", "42"}, {"LISTEN_FDS", "9"}};
    EXPECT_EQ(-EINVAL, SdEnv(42, fds, 8, &err));
}

TEST(ListenMatch, MatchesByNameNeverByPosition)
{
    sl_listener_config items[] = {Systemd("admin"), Systemd("web")};
    sl_sd_fd fds[] = {Passed(3, "web", "0.0.0.0", 80), Passed(4, "admin", "127.0.0.1", 81)};
    int owner[2];
    char err[256];
    ASSERT_EQ(0, sl_listen_match(items, 2, fds, 2, owner, err, sizeof(err))) << err;
    EXPECT_EQ(1, owner[0]);
    EXPECT_EQ(0, owner[1]);
}

TEST(ListenMatch, MatchesTcpItemsByAddress)
{
    sl_listener_config items[] = {Tcp("127.0.0.1", 8081), Tcp("127.0.0.1", 8080)};
    sl_sd_fd fds[] = {Passed(3, "x", "127.0.0.1", 8080), Passed(4, "y", "127.0.0.2", 8081)};
    int owner[2];
    char err[256];
    ASSERT_EQ(0, sl_listen_match(items, 2, fds, 2, owner, err, sizeof(err))) << err;
    EXPECT_EQ(1, owner[0]);
    EXPECT_EQ(-1, owner[1]); // another address: the item binds its own
}

TEST(ListenMatch, TrueTakesEveryFdNoOtherItemClaims)
{
    sl_listener_config items[] = {Systemd("true"), Systemd("web")};
    sl_sd_fd fds[] = {Passed(3, "a", "0.0.0.0", 1), Passed(4, "web", "0.0.0.0", 2),
                      Passed(5, "b", "0.0.0.0", 3)};
    int owner[3];
    char err[256];
    ASSERT_EQ(0, sl_listen_match(items, 2, fds, 3, owner, err, sizeof(err))) << err;
    EXPECT_EQ(0, owner[0]);
    EXPECT_EQ(1, owner[1]);
    EXPECT_EQ(0, owner[2]);
}

TEST(ListenMatch, SaysWhichItemHasNoFd)
{
    sl_listener_config items[] = {Systemd("web"), Systemd("admin")};
    sl_sd_fd fds[] = {Passed(3, "web", "0.0.0.0", 1)};
    int owner[1];
    char err[256];
    EXPECT_EQ(-ENOENT, sl_listen_match(items, 2, fds, 1, owner, err, sizeof(err)));
    EXPECT_STREQ("listeners.1 (systemd: admin): no such socket among those passed (names: web "
                 "(taken))",
                 err);
    EXPECT_EQ(-ENOENT, sl_listen_match(items, 1, fds, 0, owner, err, sizeof(err)));
    EXPECT_NE(nullptr, strstr(err, "LISTEN_FDS unset")) << err;
}

namespace
{

int Accepted(int lfd, int *client)
{
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(lfd, reinterpret_cast<sockaddr *>(&a), &len);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*client, reinterpret_cast<sockaddr *>(&a), len) < 0)
        return -1;
    for (int i = 0; i < 1000; i++) {
        int fd = accept(lfd, nullptr, nullptr);
        if (fd >= 0)
            return fd;
        usleep(1000);
    }
    return -1;
}

int IntOpt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    getsockopt(fd, level, name, &v, &len);
    return v;
}

} // namespace

TEST(ListenTune, AcceptedSocketsInheritTheTcpOptions)
{
    for (bool nodelay : {false, true}) {
        sl_listener_config l = Tcp("127.0.0.1", 0);
        int lfd = sl_listen_open(&l);
        ASSERT_GE(lfd, 0);
        sl_tcp_config tcp{};
        tcp.nodelay = nodelay;
        tcp.keepalive_idle_ms = 70000;
        tcp.keepalive_interval_ms = 9000;
        tcp.keepalive_count = 4;
        tcp.user_timeout_ms = 12345;
        ASSERT_EQ(0, sl_listen_tune(lfd, &tcp));
        int client = -1, fd = Accepted(lfd, &client);
        ASSERT_GE(fd, 0);
        EXPECT_EQ(nodelay ? 1 : 0, IntOpt(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
        EXPECT_EQ(1, IntOpt(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
        EXPECT_EQ(70, IntOpt(fd, IPPROTO_TCP, TCP_KEEPIDLE));
        EXPECT_EQ(9, IntOpt(fd, IPPROTO_TCP, TCP_KEEPINTVL));
        EXPECT_EQ(4, IntOpt(fd, IPPROTO_TCP, TCP_KEEPCNT));
        EXPECT_EQ(12345, IntOpt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
        close(fd);
        close(client);
        close(lfd);
    }
}

namespace
{

// `path` must outlive the config.
sl_listener_config Unix(const std::string &path)
{
    sl_listener_config l{};
    l.kind = SL_LISTENER_UNIX;
    l.path = path.c_str();
    l.name = l.path;
    l.mode = -1;
    return l;
}

} // namespace

TEST(ListenUnix, ReplacesAStaleSocketAndRefusesALiveOne)
{
    std::string path = "/tmp/sl-listen-" + std::to_string(getpid());
    sl_listener_config l = Unix(path);
    l.mode = 0600;
    int a = sl_listen_open(&l);
    ASSERT_GE(a, 0);
    struct stat st {
    };
    ASSERT_EQ(0, stat(path.c_str(), &st));
    EXPECT_EQ(0600u, st.st_mode & 0777);
    EXPECT_EQ(-EADDRINUSE, sl_listen_open(&l)); // a live listener answers
    close(a);                                   // the file stays: stale now
    ASSERT_EQ(0, access(path.c_str(), F_OK));
    int b = sl_listen_open(&l);
    EXPECT_GE(b, 0);
    close(b);
    unlink(path.c_str());
}

TEST(ListenUnix, BindsAbstractSocketsWithoutAFile)
{
    std::string name = "@sl-listen-abstract-" + std::to_string(getpid());
    sl_listener_config l = Unix(name);
    int a = sl_listen_open(&l);
    ASSERT_GE(a, 0);
    EXPECT_NE(0, access(name.c_str(), F_OK));
    EXPECT_EQ(-EADDRINUSE, sl_listen_open(&l));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path + 1, name.c_str() + 1, name.size() - 1);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_EQ(0, connect(c, reinterpret_cast<sockaddr *>(&sun),
                         offsetof(sockaddr_un, sun_path) + name.size()));
    close(c);
    close(a);
}

TEST(ListenUnix, RefusesAnUnknownOwner)
{
    std::string path = "/tmp/sl-owner-" + std::to_string(getpid());
    sl_listener_config l = Unix(path);
    l.owner = "no-such-user-saltare";
    EXPECT_EQ(-ENOENT, sl_listen_open(&l));
    EXPECT_NE(0, access(path.c_str(), F_OK));
}
