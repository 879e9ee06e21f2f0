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
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

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

// ---- re-exec: carrying the listeners over ---------------------------------

namespace
{

// A loopback port free right now (bound, read, closed).
uint16_t FreePort()
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

bool IsOpen(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

bool CloseOnExec(int fd)
{
    return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

ino_t Inode(const std::string &path)
{
    struct stat st {
    };
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A config over `items` (zero tcp options).
sl_config Config(std::vector<sl_listener_config> &items)
{
    sl_config cfg{};
    cfg.listeners = items.data();
    cfg.nlisteners = items.size();
    return cfg;
}

// What a successful exec leaves of the old image's set: nothing to close.
void Forget(sl_listen_set *set)
{
    free(set->items);
    free(set->fds);
    free(set->owned);
    free(set->names);
    free(set->origin);
    free(set->sd_names);
}

void Forget(sl_listen_exec *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->paths[i]);
    free(x->fds);
    free(x->paths);
}

std::string Tmp(const char *what)
{
    return "/tmp/sl-inherit-" + std::string(what) + "-" + std::to_string(getpid());
}

} // namespace

TEST(ListenReexec, KeepsMatchingSocketsBindsNewOnesClosesRemovedOnes)
{
    std::string kept_path = Tmp("kept"), gone_path = Tmp("gone"), new_path = Tmp("new");
    uint16_t pa = FreePort(), pb = FreePort(), pc = FreePort();
    std::vector<sl_listener_config> old_items = {Tcp("127.0.0.1", pa), Unix(kept_path),
                                                 Unix(gone_path), Tcp("127.0.0.1", pb)};
    sl_config old_cfg = Config(old_items);
    sl_listen_set old_set;
    ASSERT_EQ(0, sl_listen_open_all(&old_cfg, &old_set));
    int fd_a = old_set.fds[0], fd_kept = old_set.fds[1], fd_gone = old_set.fds[2],
        fd_b = old_set.fds[3];
    ino_t kept_ino = Inode(kept_path);
    ASSERT_NE(0u, kept_ino);

    std::vector<sl_listener_config> new_items = {Unix(new_path), Tcp("127.0.0.1", pc),
                                                 Unix(kept_path), Tcp("127.0.0.1", pa)};
    sl_config new_cfg = Config(new_items);
    sl_listen_exec x;
    ASSERT_EQ(0, sl_listen_exec_prepare(&old_set, &new_cfg, &x));
    ASSERT_EQ(2u, x.n); // the new unix and tcp listeners, bound before the exec
    EXPECT_EQ(0, access(new_path.c_str(), F_OK));
    for (int fd : {fd_a, fd_kept, fd_gone, fd_b, x.fds[0], x.fds[1]})
        EXPECT_FALSE(CloseOnExec(fd)) << fd;
    const char *env = getenv(SL_LISTEN_ENV);
    ASSERT_NE(nullptr, env);
    EXPECT_EQ(0, strncmp(env, (std::to_string(getpid()) + ";").c_str(),
                         std::to_string(getpid()).size() + 1))
        << env;
    int x0 = x.fds[0], x1 = x.fds[1];

    // The new image (same process, same PID): what exec would have kept.
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&new_cfg, &set));
    EXPECT_EQ(nullptr, getenv(SL_LISTEN_ENV)); // unset for the app
    ASSERT_EQ(4u, set.n);
    EXPECT_EQ(x0, set.fds[0]); // new: the socket bound before the exec
    EXPECT_EQ(x1, set.fds[1]);
    EXPECT_EQ(fd_kept, set.fds[2]);        // kept: the same socket...
    EXPECT_EQ(kept_ino, Inode(kept_path)); // ...and the file never unlinked
    EXPECT_EQ(fd_a, set.fds[3]);
    EXPECT_TRUE(set.owned[2]); // still ours to remove at exit
    EXPECT_EQ(SL_LISTENER_UNIX, set.items[2].kind);
    EXPECT_EQ(SL_LISTENER_TCP, set.items[3].kind);
    for (size_t i = 0; i < set.n; i++) {
        EXPECT_TRUE(CloseOnExec(set.fds[i])) << i;
        EXPECT_EQ(SL_LISTEN_FROM_BIND, set.origin[i]) << i;
    }
    EXPECT_FALSE(IsOpen(fd_gone)); // removed: closed, its file removed
    EXPECT_FALSE(IsOpen(fd_b));
    EXPECT_NE(0, access(gone_path.c_str(), F_OK));

    Forget(&old_set);
    Forget(&x);
    sl_listen_close_set(&set);
    EXPECT_NE(0, access(kept_path.c_str(), F_OK));
    EXPECT_NE(0, access(new_path.c_str(), F_OK));
}

TEST(ListenReexec, AbortAfterAFailedExecRestoresEverything)
{
    uint16_t pa = FreePort(), pc = FreePort();
    std::string new_path = Tmp("abort");
    std::vector<sl_listener_config> old_items = {Tcp("127.0.0.1", pa)};
    sl_config old_cfg = Config(old_items);
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&old_cfg, &set));
    std::vector<sl_listener_config> new_items = {Tcp("127.0.0.1", pa), Tcp("127.0.0.1", pc),
                                                 Unix(new_path)};
    sl_config new_cfg = Config(new_items);
    sl_listen_exec x;
    ASSERT_EQ(0, sl_listen_exec_prepare(&set, &new_cfg, &x));
    ASSERT_EQ(2u, x.n);
    int x0 = x.fds[0], x1 = x.fds[1];
    EXPECT_FALSE(CloseOnExec(set.fds[0]));
    sl_listen_exec_abort(&set, &x);
    EXPECT_TRUE(CloseOnExec(set.fds[0]));
    EXPECT_FALSE(IsOpen(x0));
    EXPECT_FALSE(IsOpen(x1));
    EXPECT_NE(0, access(new_path.c_str(), F_OK));
    EXPECT_EQ(nullptr, getenv(SL_LISTEN_ENV));
    EXPECT_EQ(0u, x.n);
    sl_listen_close_set(&set);
}

TEST(ListenReexec, ABindErrorIsFoundBeforeTheExec)
{
    uint16_t pa = FreePort();
    std::string file = Tmp("regular");
    FILE *f = fopen(file.c_str(), "w");
    ASSERT_NE(nullptr, f);
    fclose(f);
    std::vector<sl_listener_config> old_items = {Tcp("127.0.0.1", pa)};
    sl_config old_cfg = Config(old_items);
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&old_cfg, &set));
    uint16_t pc = FreePort();
    std::vector<sl_listener_config> new_items = {Tcp("127.0.0.1", pc), Unix(file)};
    sl_config new_cfg = Config(new_items);
    sl_listen_exec x;
    EXPECT_EQ(-EEXIST, sl_listen_exec_prepare(&set, &new_cfg, &x));
    EXPECT_EQ(0u, x.n);
    EXPECT_EQ(nullptr, getenv(SL_LISTEN_ENV));
    EXPECT_TRUE(CloseOnExec(set.fds[0]));
    EXPECT_EQ(0, access(file.c_str(), F_OK)); // not ours: left alone
    // The tcp listener bound before the failure was closed again.
    sl_listener_config probe = Tcp("127.0.0.1", pc);
    int fd = sl_listen_open(&probe);
    EXPECT_GE(fd, 0);
    close(fd);
    unlink(file.c_str());
    sl_listen_close_set(&set);
}

TEST(ListenReexec, LeavesANarrowerAddressOnAPortWeHoldToTheNextImage)
{
    uint16_t p = FreePort();
    std::vector<sl_listener_config> old_items = {Tcp("0.0.0.0", p)};
    sl_config old_cfg = Config(old_items);
    sl_listen_set old_set;
    ASSERT_EQ(0, sl_listen_open_all(&old_cfg, &old_set));
    int old_fd = old_set.fds[0];
    std::vector<sl_listener_config> new_items = {Tcp("127.0.0.1", p)};
    sl_config new_cfg = Config(new_items);
    sl_listen_exec x;
    ASSERT_EQ(0, sl_listen_exec_prepare(&old_set, &new_cfg, &x));
    EXPECT_EQ(0u, x.n); // 0.0.0.0:p is ours until the next image closes it
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&new_cfg, &set));
    (void)old_fd; // closed, then its number reused: nothing to see on it
    ASSERT_EQ(1u, set.n);
    sockaddr_in in{};
    socklen_t len = sizeof(in);
    ASSERT_EQ(0, getsockname(set.fds[0], reinterpret_cast<sockaddr *>(&in), &len));
    EXPECT_EQ(htonl(INADDR_LOOPBACK), in.sin_addr.s_addr);
    Forget(&old_set);
    Forget(&x);
    sl_listen_close_set(&set);
}

TEST(ListenReexec, ReappliesTcpOptionsAndUnixModeOnKeptSockets)
{
    uint16_t p = FreePort();
    std::string path = Tmp("mode");
    std::vector<sl_listener_config> items = {Tcp("127.0.0.1", p), Unix(path)};
    items[1].mode = 0600;
    sl_config cfg = Config(items);
    cfg.tcp.defer_accept_ms = 5000;
    cfg.tcp.user_timeout_ms = 7000;
    sl_listen_set old_set;
    ASSERT_EQ(0, sl_listen_open_all(&cfg, &old_set));
    EXPECT_LT(0, IntOpt(old_set.fds[0], IPPROTO_TCP, TCP_DEFER_ACCEPT)); // rounded up
    EXPECT_EQ(7000, IntOpt(old_set.fds[0], IPPROTO_TCP, TCP_USER_TIMEOUT));
    std::vector<sl_listener_config> new_items = items;
    new_items[1].mode = 0644;
    sl_config new_cfg = Config(new_items);
    new_cfg.tcp.user_timeout_ms = 9000; // defer_accept back to 0 (off)
    sl_listen_exec x;
    ASSERT_EQ(0, sl_listen_exec_prepare(&old_set, &new_cfg, &x));
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&new_cfg, &set));
    ASSERT_EQ(old_set.fds[0], set.fds[0]);
    EXPECT_EQ(0, IntOpt(set.fds[0], IPPROTO_TCP, TCP_DEFER_ACCEPT));
    EXPECT_EQ(9000, IntOpt(set.fds[0], IPPROTO_TCP, TCP_USER_TIMEOUT));
    struct stat st {
    };
    ASSERT_EQ(0, stat(path.c_str(), &st));
    EXPECT_EQ(0644u, st.st_mode & 0777);
    Forget(&old_set);
    Forget(&x);
    sl_listen_close_set(&set);
}

TEST(ListenReexec, SystemdSocketsKeepTheirNameAndAreNeverUnlinked)
{
    // A socket systemd passed to the first image, described by it.
    std::string path = Tmp("sd");
    sl_listener_config l = Unix(path);
    int fd = sl_listen_open(&l);
    ASSERT_GE(fd, 0);
    std::string env = std::to_string(getpid()) + ";" + std::to_string(fd) + ",systemd,0,unix," +
                      path + ",web%2Capi";
    ASSERT_EQ(0, setenv(SL_LISTEN_ENV, env.c_str(), 1));
    std::vector<sl_listener_config> items = {Systemd("web,api")};
    sl_config cfg = Config(items);
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&cfg, &set));
    ASSERT_EQ(1u, set.n);
    EXPECT_EQ(fd, set.fds[0]);
    EXPECT_EQ(SL_LISTEN_FROM_SYSTEMD, set.origin[0]);
    EXPECT_FALSE(set.owned[0]);
    EXPECT_EQ(SL_LISTENER_UNIX, set.items[0].kind);
    char out[1024];
    ASSERT_GT(sl_listen_env_format(&set, nullptr, 77, out, sizeof(out)), 0);
    EXPECT_EQ("77;" + std::to_string(fd) + ",systemd,0,unix," + path + ",web%2Capi",
              std::string(out));
    sl_listen_close_set(&set);
    EXPECT_EQ(0, access(path.c_str(), F_OK)); // systemd's file, not ours
    unlink(path.c_str());
}

TEST(ListenReexec, ARemovedSystemdSocketIsClosedButItsFileKept)
{
    std::string path = Tmp("sdgone");
    sl_listener_config l = Unix(path);
    int fd = sl_listen_open(&l);
    ASSERT_GE(fd, 0);
    uint16_t p = FreePort();
    std::string env =
        std::to_string(getpid()) + ";" + std::to_string(fd) + ",systemd,0,unix," + path + ",web";
    ASSERT_EQ(0, setenv(SL_LISTEN_ENV, env.c_str(), 1));
    std::vector<sl_listener_config> items = {Tcp("127.0.0.1", p)};
    sl_config cfg = Config(items);
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&cfg, &set));
    EXPECT_EQ(0, access(path.c_str(), F_OK));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_NE(0, connect(c, reinterpret_cast<sockaddr *>(&sun), sizeof(sun))); // closed
    EXPECT_EQ(ECONNREFUSED, errno);
    close(c);
    sl_listen_close_set(&set);
    unlink(path.c_str());
}

TEST(ListenReexec, IgnoresAnFdThatIsNotTheSocketDescribed)
{
    uint16_t p = FreePort(), q = FreePort();
    sl_listener_config l = Tcp("127.0.0.1", p);
    int fd = sl_listen_open(&l);
    ASSERT_GE(fd, 0);
    // The variable claims another port for this fd: stale or forged.
    std::string env = std::to_string(getpid()) + ";" + std::to_string(fd) +
                      ",bind,0,tcp,127.0.0.1:" + std::to_string(q) + ",";
    ASSERT_EQ(0, setenv(SL_LISTEN_ENV, env.c_str(), 1));
    std::vector<sl_listener_config> items = {Tcp("127.0.0.1", q)};
    sl_config cfg = Config(items);
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&cfg, &set));
    EXPECT_NE(fd, set.fds[0]);
    EXPECT_TRUE(IsOpen(fd)); // neither used nor closed
    sl_listen_close_set(&set);
    close(fd);
}

TEST(ListenEnv, ParsesEntriesForThisPidOnly)
{
    sl_sd_fd fds[4];
    char names[256], err[256] = "";
    const char *v = "42;5,bind,1,unix,/run/a%20b.sock,;6,systemd,0,tcp,[::1]:80,w%3Bx;"
                    "7,fd,0,tcp,10.0.0.1:8080,";
    ASSERT_EQ(3, sl_listen_env_parse(v, 42, fds, 4, names, sizeof(names), err, sizeof(err))) << err;
    EXPECT_EQ(5, fds[0].fd);
    EXPECT_EQ(SL_LISTEN_FROM_BIND, fds[0].origin);
    EXPECT_TRUE(fds[0].owned);
    auto *sun = reinterpret_cast<sockaddr_un *>(&fds[0].addr);
    EXPECT_EQ(AF_UNIX, sun->sun_family);
    EXPECT_STREQ("/run/a b.sock", sun->sun_path);
    EXPECT_EQ(SL_LISTEN_FROM_SYSTEMD, fds[1].origin);
    EXPECT_STREQ("w;x", fds[1].name);
    EXPECT_EQ(AF_INET6, fds[1].addr.ss_family);
    EXPECT_EQ(htons(80), reinterpret_cast<sockaddr_in6 *>(&fds[1].addr)->sin6_port);
    EXPECT_EQ(SL_LISTEN_FROM_FD, fds[2].origin);
    auto *in = reinterpret_cast<sockaddr_in *>(&fds[2].addr);
    EXPECT_EQ(htons(8080), in->sin_port);
    EXPECT_EQ(htonl(0x0a000001), in->sin_addr.s_addr);
    EXPECT_EQ(0, sl_listen_env_parse(v, 43, fds, 4, names, sizeof(names), err, sizeof(err)));
    EXPECT_EQ(0, sl_listen_env_parse(nullptr, 42, fds, 4, names, sizeof(names), err, sizeof(err)));
    EXPECT_EQ(0, sl_listen_env_parse("42", 42, fds, 4, names, sizeof(names), err, sizeof(err)));
}

TEST(ListenEnv, RejectsMalformedValues)
{
    sl_sd_fd fds[4];
    char names[256], err[256];
    for (const char *v :
         {"x;3,bind,0,tcp,1.2.3.4:80,", "42;3,bind,0,tcp,1.2.3.4:80", "42;3,bind,2,tcp,1.2.3.4:80,",
          "42;3,bound,0,tcp,1.2.3.4:80,", "42;3,bind,0,udp,1.2.3.4:80,", "42;3,bind,0,tcp,1.2.3.4,",
          "42;3,bind,0,tcp,1.2.3.4:80,,", "42;-3,bind,0,tcp,1.2.3.4:80,", "42;3,bind,0,unix,%2,",
          "42;3,bind,0,unix,a%00b,", "42;3,bind,0,unix,,", "42;;"}) {
        err[0] = '\0';
        EXPECT_EQ(-EINVAL,
                  sl_listen_env_parse(v, 42, fds, 4, names, sizeof(names), err, sizeof(err)))
            << v;
        EXPECT_NE('\0', err[0]) << v;
    }
    EXPECT_EQ(-EINVAL, sl_listen_env_parse("42;3,bind,0,tcp,1.2.3.4:80,;4,bind,0,tcp,1.2.3.4:81,",
                                           42, fds, 1, names, sizeof(names), err, sizeof(err)));
}

TEST(ListenMatch, OurOwnSocketsMatchOnlyByAddress)
{
    sl_listener_config items[] = {Systemd("true"), Tcp("127.0.0.1", 8080)};
    sl_sd_fd fds[] = {Passed(3, "unknown", "127.0.0.1", 8081), Passed(4, "x", "127.0.0.1", 8080),
                      Passed(5, "web", "127.0.0.1", 8082)};
    fds[0].origin = SL_LISTEN_FROM_BIND;
    fds[1].origin = SL_LISTEN_FROM_BIND;
    int owner[3];
    char err[256];
    ASSERT_EQ(0, sl_listen_match(items, 2, fds, 3, owner, err, sizeof(err))) << err;
    EXPECT_EQ(-1, owner[0]); // a removed listener: not swallowed by systemd: true
    EXPECT_EQ(1, owner[1]);
    EXPECT_EQ(0, owner[2]); // systemd's: the catch-all takes it
}

TEST(ListenMatch, AnFdItemTakesThatFd)
{
    sl_listener_config fd_item{};
    fd_item.kind = SL_LISTENER_FD;
    fd_item.fd = 4;
    sl_listener_config items[] = {Tcp("127.0.0.1", 80), fd_item};
    sl_sd_fd fds[] = {Passed(4, "x", "127.0.0.1", 80)};
    fds[0].origin = SL_LISTEN_FROM_FD;
    int owner[1];
    char err[256];
    ASSERT_EQ(0, sl_listen_match(items, 2, fds, 1, owner, err, sizeof(err))) << err;
    EXPECT_EQ(1, owner[0]);
}

// ---- re-exec for real: the sockets survive execve ------------------------
//
// The test forks; the child opens the old listeners, prepares, and execs
// this test binary again, whose constructor below plays the new image: it
// opens the new config's listeners and reports what it got on a pipe.

namespace
{

// "tcp:PORT", "unix:PATH" or "systemd:NAME" items, ';'-separated; storage
// lives in `keep`.
std::vector<sl_listener_config> ParseItems(const std::string &spec, std::vector<std::string> *keep)
{
    std::vector<sl_listener_config> items;
    size_t pos = 0;
    keep->reserve(64);
    while (pos < spec.size()) {
        size_t end = spec.find(';', pos);
        std::string one = spec.substr(pos, end == std::string::npos ? end : end - pos);
        pos = end == std::string::npos ? spec.size() : end + 1;
        if (one.rfind("tcp:", 0) == 0) {
            items.push_back(Tcp("127.0.0.1", static_cast<uint16_t>(std::stoi(one.substr(4)))));
        } else if (one.rfind("systemd:", 0) == 0) {
            keep->push_back(one.substr(8));
            items.push_back(Systemd(keep->back().c_str()));
        } else {
            keep->push_back(one.substr(5));
            items.push_back(Unix(keep->back()));
        }
    }
    return items;
}

// The new image: reports "fd kind owned\n" per entry, then "open:" and the
// probed fds still open, then "env:" and whether the variable leaked.
__attribute__((constructor)) void NewImage()
{
    const char *spec = getenv("SL_TEST_NEW_IMAGE");
    if (spec == nullptr)
        return;
    int out = atoi(getenv("SL_TEST_REPORT_FD"));
    std::string probe = getenv("SL_TEST_PROBE");
    unsetenv("SL_TEST_NEW_IMAGE");
    std::vector<std::string> keep;
    std::vector<sl_listener_config> items = ParseItems(spec, &keep);
    sl_config cfg = Config(items);
    sl_listen_set set;
    std::string report;
    if (sl_listen_open_all(&cfg, &set) < 0) {
        report = "failed\n";
    } else {
        for (size_t i = 0; i < set.n; i++)
            report += std::to_string(set.fds[i]) + " " +
                      (set.items[i].kind == SL_LISTENER_UNIX ? "unix" : "tcp") + " " +
                      (set.owned[i] ? "owned" : "-") + (CloseOnExec(set.fds[i]) ? "" : " leaky") +
                      (set.origin[i] == SL_LISTEN_FROM_SYSTEMD
                           ? std::string(" systemd=") + (set.sd_names + i * SL_LISTEN_SD_NAME_CAP)
                           : "") +
                      "\n";
        report += "open:";
        for (size_t p = 0; p < probe.size();) {
            size_t e = probe.find(',', p);
            int fd = std::stoi(probe.substr(p, e == std::string::npos ? e : e - p));
            p = e == std::string::npos ? probe.size() : e + 1;
            if (IsOpen(fd) && fd != out)
                report += " " + std::to_string(fd);
        }
        report += std::string("\nenv:") + (getenv(SL_LISTEN_ENV) ? "leaked" : "unset") + "\n";
    }
    if (write(out, report.data(), report.size()) < 0)
        _exit(2);
    _exit(0);
}

// The parent's side of a re-exec test: everything the child (and the image
// it exec'd) wrote to the report pipe, once the child exited 0.
static void CollectReport(pid_t pid, int report[2], std::string *got)
{
    close(report[1]);
    char buf[512];
    ssize_t n;
    while ((n = read(report[0], buf, sizeof(buf))) > 0)
        got->append(buf, static_cast<size_t>(n));
    close(report[0]);
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << *got;
}

} // namespace

TEST(ListenReexec, SocketsSurviveARealExec)
{
    uint16_t pa = FreePort(), pb = FreePort(), pc = FreePort();
    std::string kept = Tmp("exec-kept"), gone = Tmp("exec-gone");
    std::string old_spec = "tcp:" + std::to_string(pa) + ";unix:" + kept +
                           ";tcp:" + std::to_string(pb) + ";unix:" + gone;
    std::string new_spec =
        "unix:" + kept + ";tcp:" + std::to_string(pc) + ";tcp:" + std::to_string(pa);
    int report[2];
    ASSERT_EQ(0, pipe(report)); // no O_CLOEXEC: the new image writes to it
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(report[0]);
        std::vector<std::string> keep_old, keep_new;
        std::vector<sl_listener_config> old_items = ParseItems(old_spec, &keep_old);
        std::vector<sl_listener_config> new_items = ParseItems(new_spec, &keep_new);
        sl_config old_cfg = Config(old_items), new_cfg = Config(new_items);
        sl_listen_set set;
        sl_listen_exec x;
        int other = open("/dev/null", O_RDONLY | O_CLOEXEC); // must not survive
        if (sl_listen_open_all(&old_cfg, &set) < 0 ||
            sl_listen_exec_prepare(&set, &new_cfg, &x) < 0)
            _exit(3);
        std::string probe = std::to_string(other);
        for (size_t i = 0; i < set.n; i++)
            probe += "," + std::to_string(set.fds[i]);
        std::string tag = std::to_string(set.fds[0]) + "," + std::to_string(set.fds[1]) + "," +
                          std::to_string(set.fds[2]) + "," + std::to_string(set.fds[3]) + "," +
                          std::to_string(x.fds[0]);
        setenv("SL_TEST_NEW_IMAGE", new_spec.c_str(), 1);
        setenv("SL_TEST_REPORT_FD", std::to_string(report[1]).c_str(), 1);
        setenv("SL_TEST_PROBE", probe.c_str(), 1);
        // The old image's fds, for the parent to compare: written first.
        tag += "\n";
        if (write(report[1], tag.data(), tag.size()) < 0)
            _exit(4);
        execl("/proc/self/exe", "listen_test", (char *)nullptr);
        _exit(5);
    }
    std::string got;
    ASSERT_NO_FATAL_FAILURE(CollectReport(pid, report, &got));
    // Old image: a, kept, b, gone, and the new tcp listener bound before exec.
    int a, k, b, g, c;
    ASSERT_EQ(5, sscanf(got.c_str(), "%d,%d,%d,%d,%d", &a, &k, &b, &g, &c)) << got;
    std::string want = std::to_string(k) + " unix owned\n" + std::to_string(c) + " tcp -\n" +
                       std::to_string(a) + " tcp -\n";
    std::string rest = got.substr(got.find('\n') + 1);
    EXPECT_EQ(want, rest.substr(0, want.size())) << got;
    // Nothing else from the old image is open: not the /dev/null fd (it had
    // close-on-exec), not the removed listeners.
    std::string open_line = rest.substr(want.size());
    std::string expect_open = "open: " + std::to_string(a) + " " + std::to_string(k) + "\n";
    EXPECT_EQ(expect_open + "env:unset\n", open_line) << got;
    EXPECT_EQ(0, access(kept.c_str(), F_OK)); // kept: never unlinked...
    EXPECT_NE(0, access(gone.c_str(), F_OK)); // ...the removed one's file is gone
    unlink(kept.c_str());
}

TEST(ListenReexec, ANewSystemdItemWithoutASocketIsAnErrorBeforeTheExec)
{
    uint16_t p = FreePort();
    std::vector<sl_listener_config> items = {Tcp("127.0.0.1", p)};
    sl_config cfg = Config(items);
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&cfg, &set));
    std::vector<sl_listener_config> new_items = {Tcp("127.0.0.1", p), Systemd("web")};
    sl_config new_cfg = Config(new_items);
    sl_listen_exec x;
    EXPECT_EQ(-ENOENT, sl_listen_exec_prepare(&set, &new_cfg, &x));
    EXPECT_EQ(nullptr, getenv(SL_LISTEN_ENV));
    EXPECT_TRUE(CloseOnExec(set.fds[0]));
    sl_listen_close_set(&set);
}

TEST(ListenReexec, AKeptSocketKeepsTheReuseportItWasBoundWith)
{
    uint16_t p = FreePort();
    std::vector<sl_listener_config> items = {Tcp("127.0.0.1", p)};
    sl_config cfg = Config(items);
    sl_listen_set old_set;
    ASSERT_EQ(0, sl_listen_open_all(&cfg, &old_set));
    EXPECT_EQ(0, IntOpt(old_set.fds[0], SOL_SOCKET, SO_REUSEPORT));
    std::vector<sl_listener_config> new_items = items;
    new_items[0].reuseport = true;
    sl_config new_cfg = Config(new_items);
    sl_listen_exec x;
    ASSERT_EQ(0, sl_listen_exec_prepare(&old_set, &new_cfg, &x));
    sl_listen_set set;
    ASSERT_EQ(0, sl_listen_open_all(&new_cfg, &set));
    EXPECT_EQ(old_set.fds[0], set.fds[0]); // kept (a warning says reuseport stays off)
    EXPECT_EQ(0, IntOpt(set.fds[0], SOL_SOCKET, SO_REUSEPORT));
    Forget(&old_set);
    Forget(&x);
    sl_listen_close_set(&set);
}

TEST(ListenReexec, SystemdSocketsSurviveARealExecWithTheirNames)
{
    uint16_t pa = FreePort();
    std::string sd_path = Tmp("exec-sd");
    std::string spec = "systemd:web;tcp:" + std::to_string(pa);
    int report[2];
    ASSERT_EQ(0, pipe(report));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(report[0]);
        int out = fcntl(report[1], F_DUPFD, 10); // keep fd 3 free for systemd's socket
        sl_listener_config l = Unix(sd_path);
        int sd = sl_listen_open(&l);
        if (out < 0 || sd < 0 || dup2(sd, 3) != 3)
            _exit(3);
        if (sd != 3)
            close(sd);
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_FDNAMES", "web", 1);
        std::vector<std::string> keep;
        std::vector<sl_listener_config> items = ParseItems(spec, &keep);
        sl_config cfg = Config(items);
        sl_listen_set set;
        sl_listen_exec x;
        if (sl_listen_open_all(&cfg, &set) < 0 || sl_listen_exec_prepare(&set, &cfg, &x) < 0)
            _exit(4);
        setenv("SL_TEST_NEW_IMAGE", spec.c_str(), 1);
        setenv("SL_TEST_REPORT_FD", std::to_string(out).c_str(), 1);
        setenv("SL_TEST_PROBE", "3", 1);
        std::string tag = std::to_string(set.fds[1]) + "\n";
        if (write(out, tag.data(), tag.size()) < 0)
            _exit(5);
        execl("/proc/self/exe", "listen_test", (char *)nullptr);
        _exit(6);
    }
    std::string got;
    ASSERT_NO_FATAL_FAILURE(CollectReport(pid, report, &got));
    int a = -1;
    ASSERT_EQ(1, sscanf(got.c_str(), "%d", &a)) << got;
    EXPECT_EQ(std::to_string(a) + "\n3 unix - systemd=web\n" + std::to_string(a) +
                  " tcp -\nopen: 3\nenv:unset\n",
              got);
    EXPECT_EQ(0, access(sd_path.c_str(), F_OK)); // systemd's file: never ours to remove
    unlink(sd_path.c_str());
}

TEST(ListenEnv, ANamesBufferTooSmallIsAnErrorNotAnOverflow)
{
    sl_sd_fd fds[4];
    char names[4], err[256] = "";
    const char *v = "42;3,systemd,0,tcp,1.2.3.4:80,web;4,systemd,0,tcp,1.2.3.4:81,";
    EXPECT_EQ(-EINVAL, sl_listen_env_parse(v, 42, fds, 4, names, sizeof(names), err, sizeof(err)));
    EXPECT_EQ(-EINVAL, sl_listen_env_parse(v, 42, fds, 4, names, 0, err, sizeof(err)));
}
