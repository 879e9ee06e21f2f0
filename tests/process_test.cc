// The program's process helpers: the pid file (program/pidfile.h) and the
// privilege drop (program/privdrop.h). The drop itself runs in a forked
// child (it cannot be undone) and needs root, as the suite runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "program/pidfile.h"
#include "program/privdrop.h"

namespace
{

std::string Tmp(const char *what)
{
    return "/tmp/sl-process-" + std::string(what) + "-" + std::to_string(getpid());
}

std::string Read(const std::string &path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

void Write(const std::string &path, const std::string &text)
{
    std::ofstream(path) << text;
}

// Runs fn in a child; returns its exit status (fn's return value).
template <class F> int InChild(F fn)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn());
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace

TEST(PidFile, HoldsThePidAndIsRemovedOnlyByItsWriter)
{
    std::string path = Tmp("pid");
    ASSERT_EQ(0, sl_pidfile_write(path.c_str()));
    EXPECT_EQ(std::to_string(getpid()) + "\n", Read(path));
    EXPECT_EQ(getpid(), sl_pidfile_read(path.c_str()));
    EXPECT_EQ(0, InChild([] {
                  sl_pidfile_remove(); // a forked child (a worker) leaves it
                  return 0;
              }));
    EXPECT_EQ(0, access(path.c_str(), F_OK));
    ASSERT_EQ(0, sl_pidfile_write(path.c_str())); // a re-exec: same PID, kept
    EXPECT_EQ(std::to_string(getpid()) + "\n", Read(path));
    sl_pidfile_remove();
    EXPECT_NE(0, access(path.c_str(), F_OK));
    sl_pidfile_remove(); // again: nothing
}

TEST(PidFile, ReplacesADeadProcesssFile)
{
    std::string path = Tmp("stale");
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, nullptr, 0);
    Write(path, std::to_string(dead) + "\n");
    ASSERT_EQ(0, sl_pidfile_write(path.c_str()));
    EXPECT_EQ(getpid(), sl_pidfile_read(path.c_str()));
    sl_pidfile_remove();
}

TEST(PidFile, RefusesALiveProcessOfTheSameProgram)
{
    std::string path = Tmp("live");
    int ready[2];
    ASSERT_EQ(0, pipe(ready));
    pid_t live = fork(); // the same executable: "another saltare"
    if (live == 0) {
        close(ready[0]);
        pause();
        _exit(0);
    }
    close(ready[1]);
    Write(path, std::to_string(live) + "\n");
    EXPECT_EQ(-EEXIST, sl_pidfile_write(path.c_str()));
    EXPECT_EQ(std::to_string(live) + "\n", Read(path)); // untouched
    sl_pidfile_remove();                                // not ours: stays
    EXPECT_EQ(0, access(path.c_str(), F_OK));
    kill(live, SIGKILL);
    waitpid(live, nullptr, 0);
    close(ready[0]);
    unlink(path.c_str());
}

TEST(PidFile, ReadRejectsGarbage)
{
    std::string path = Tmp("garbage");
    for (const char *text : {"", "abc\n", "12x\n", "-5\n", "0\n", "99999999999\n"}) {
        Write(path, text);
        EXPECT_EQ(-EINVAL, sl_pidfile_read(path.c_str())) << text;
    }
    Write(path, "123");
    EXPECT_EQ(123, sl_pidfile_read(path.c_str()));
    unlink(path.c_str());
    EXPECT_EQ(0, sl_pidfile_read(path.c_str()));
}

namespace
{

sl_config WithUser(const char *user, const char *group)
{
    sl_config cfg{};
    cfg.process.user = user;
    cfg.process.group = group;
    return cfg;
}

} // namespace

TEST(Privdrop, ResolvesNamesAndNumbers)
{
    struct sl_privdrop p;
    sl_config cfg = WithUser("nobody", "nogroup");
    ASSERT_EQ(0, sl_privdrop_init(&p, &cfg));
    EXPECT_TRUE(p.on);
    EXPECT_EQ(65534u, p.uid);
    EXPECT_EQ(65534u, p.gid);
    ASSERT_GE(p.ngroups, 1u);
    EXPECT_EQ(65534u, p.groups[0]);
    sl_privdrop_release(&p);
    cfg = WithUser("4242", nullptr); // a uid without an account
    ASSERT_EQ(0, sl_privdrop_init(&p, &cfg));
    EXPECT_EQ(4242u, p.uid);
    EXPECT_EQ(4242u, p.gid);
    EXPECT_EQ(1u, p.ngroups);
    sl_privdrop_release(&p);
    cfg = WithUser(nullptr, nullptr);
    ASSERT_EQ(0, sl_privdrop_init(&p, &cfg));
    EXPECT_FALSE(p.on);
    EXPECT_EQ(0, sl_privdrop_apply(&p)); // nothing to do
    sl_privdrop_release(&p);
}

TEST(Privdrop, RefusesUnknownNamesAndAGroupAlone)
{
    struct sl_privdrop p;
    sl_config cfg = WithUser("no-such-user-saltare", nullptr);
    EXPECT_EQ(-ENOENT, sl_privdrop_init(&p, &cfg));
    cfg = WithUser("nobody", "no-such-group-saltare");
    EXPECT_EQ(-ENOENT, sl_privdrop_init(&p, &cfg));
    cfg = WithUser(nullptr, "nogroup");
    EXPECT_EQ(-EINVAL, sl_privdrop_init(&p, &cfg));
    sl_privdrop_release(&p);
}

TEST(Privdrop, DropsForGoodInAChild)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root";
    sl_config cfg = WithUser("nobody", nullptr);
    EXPECT_EQ(0, InChild([&] {
                  if (sl_privdrop(&cfg) != 0)
                      return 1;
                  uid_t r, e, s;
                  gid_t gr, ge, gs;
                  getresuid(&r, &e, &s);
                  getresgid(&gr, &ge, &gs);
                  if (r != 65534 || e != 65534 || s != 65534 || gr != 65534 || ge != 65534 ||
                      gs != 65534)
                      return 2;
                  gid_t groups[8];
                  if (getgroups(8, groups) != 1 || groups[0] != 65534)
                      return 3;
                  if (setuid(0) == 0 || setgid(0) == 0)
                      return 4;
                  return sl_privdrop(&cfg) == 0 ? 0 : 5; // already nobody: a no-op
              }));
    sl_config root = WithUser("root", nullptr);
    EXPECT_EQ(0, InChild([&] {
                  sl_config nobody = WithUser("nobody", nullptr);
                  if (sl_privdrop(&nobody) != 0)
                      return 1;
                  struct sl_privdrop p;
                  if (sl_privdrop_init(&p, &root) != -EPERM) // found before trying
                      return 2;
                  p.on = true; // and applying anyway fails too
                  p.uid = 0;
                  p.gid = 0;
                  p.groups = nullptr;
                  p.ngroups = 0;
                  snprintf(p.user, sizeof(p.user), "root");
                  return sl_privdrop_apply(&p) == -EPERM ? 0 : 3; // no way back
              }));
}
