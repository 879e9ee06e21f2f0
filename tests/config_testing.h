// Helpers shared by the config tests: load YAML strings with a fake
// environment, capture diagnostics and --print-config output as strings,
// compare two compiled configs field by field, find runfiles.
#ifndef SL_TESTS_CONFIG_TESTING_H
#define SL_TESTS_CONFIG_TESTING_H

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace sltest
{

// The environment ${VAR} sees during Load() (getenv_fn is a plain function).
inline std::map<std::string, std::string> &FakeEnv()
{
    static std::map<std::string, std::string> env;
    return env;
}

inline const char *FakeGetenv(const char *name)
{
    auto it = FakeEnv().find(name);
    return it == FakeEnv().end() ? nullptr : it->second.c_str();
}

// Runs fn(FILE *) and returns what it wrote.
template <typename F> std::string Capture(F fn)
{
    char *buf = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f);
    fclose(f);
    std::string s(buf, len);
    free(buf);
    return s;
}

inline std::string Print(const sl_config *cfg)
{
    return Capture([&](FILE *f) { sl_cfg_print(cfg, f); });
}

struct Source {
    std::string name, text;
    bool from_file = false; // read `name` from disk instead of `text`
};

// One load: the config (or NULL) and every diagnostic line, as printed.
// The check_tls callback the next Load passes (with check_files); NULL = none.
using CheckTlsFn = int (*)(int what, const char *file, const char *key, char *err, size_t cap);
inline CheckTlsFn &CheckTls()
{
    static CheckTlsFn fn = nullptr;
    return fn;
}

class Load
{
  public:
    Load(const std::vector<Source> &sources, const std::vector<std::string> &sets = {},
         const std::map<std::string, std::string> &env = {}, bool check_files = false)
    {
        std::vector<sl_cfg_source> srcs;
        for (const auto &s : sources)
            srcs.push_back({s.name.c_str(), s.from_file ? nullptr : s.text.c_str()});
        std::vector<const char *> setv;
        for (const auto &s : sets)
            setv.push_back(s.c_str());
        FakeEnv() = env;
        sl_cfg_input in = {};
        in.sources = srcs.data();
        in.nsources = srcs.size();
        in.sets = setv.data();
        in.nsets = setv.size();
        in.getenv_fn = FakeGetenv;
        in.check_files = check_files;
        in.check_tls = CheckTls();
        sl_diags d;
        sl_diags_init(&d);
        cfg_ = sl_cfg_load(&in, &d);
        errors_ = Capture([&](FILE *f) { sl_diags_print(&d, f); });
        warnings_ = Capture([&](FILE *f) { sl_diags_print_warnings(&d, f); });
        count_ = d.count;
        sl_diags_release(&d);
    }
    // A single in-memory document named "test.yaml".
    explicit Load(const std::string &yaml, const std::vector<std::string> &sets = {},
                  const std::map<std::string, std::string> &env = {})
        : Load(std::vector<Source>{{"test.yaml", yaml}}, sets, env)
    {
    }
    ~Load()
    {
        sl_cfg_free(cfg_);
    }
    Load(const Load &) = delete;
    Load &operator=(const Load &) = delete;

    const sl_config *cfg() const
    {
        return cfg_;
    }
    const sl_config *operator->() const
    {
        return cfg_;
    }
    bool ok() const
    {
        return cfg_ != nullptr;
    }
    const std::string &errors() const
    {
        return errors_;
    }
    size_t count() const
    {
        return count_;
    }
    // Warnings, one per line (a config that compiles may still have some).
    const std::string &warnings() const
    {
        return warnings_;
    }

  private:
    const sl_config *cfg_ = nullptr;
    std::string errors_;
    std::string warnings_;
    size_t count_ = 0;
};

inline bool SameStr(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

inline void ExpectSameLimits(const sl_limits &a, const sl_limits &b, const std::string &where)
{
    EXPECT_EQ(a.max_body, b.max_body) << where;
    EXPECT_EQ(a.max_header_bytes, b.max_header_bytes) << where;
    EXPECT_EQ(a.max_headers, b.max_headers) << where;
    EXPECT_EQ(a.max_connections, b.max_connections) << where;
    EXPECT_EQ(a.max_keepalive_requests, b.max_keepalive_requests) << where;
}

inline void ExpectSameTimeouts(const sl_timeouts &a, const sl_timeouts &b, const std::string &where)
{
    EXPECT_EQ(a.header_ms, b.header_ms) << where;
    EXPECT_EQ(a.keep_alive_ms, b.keep_alive_ms) << where;
    EXPECT_EQ(a.body_ms, b.body_ms) << where;
    EXPECT_EQ(a.write_ms, b.write_ms) << where;
    EXPECT_EQ(a.shutdown_ms, b.shutdown_ms) << where;
}

// Every field of two compiled configs, one by one.
inline void ExpectSameConfig(const sl_config *a, const sl_config *b)
{
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(SameStr(a->app.target, b->app.target));
    EXPECT_TRUE(SameStr(a->app.module, b->app.module));
    EXPECT_TRUE(SameStr(a->app.attr, b->app.attr));
    ASSERT_EQ(a->app.npath, b->app.npath);
    for (size_t i = 0; i < a->app.npath; i++)
        EXPECT_STREQ(a->app.path[i], b->app.path[i]);
    EXPECT_TRUE(SameStr(a->app.venv, b->app.venv));
    EXPECT_EQ(a->app.lifespan, b->app.lifespan);
    EXPECT_EQ(a->app.loop, b->app.loop);
    EXPECT_EQ(a->workers, b->workers);
    ASSERT_EQ(a->nlisteners, b->nlisteners);
    for (size_t i = 0; i < a->nlisteners; i++) {
        const sl_listener_config &x = a->listeners[i], &y = b->listeners[i];
        std::string where = "listener " + std::to_string(i);
        EXPECT_EQ(x.kind, y.kind) << where;
        EXPECT_TRUE(SameStr(x.name, y.name)) << where;
        EXPECT_TRUE(SameStr(x.path, y.path)) << where;
        EXPECT_EQ(x.addrlen, y.addrlen) << where;
        EXPECT_EQ(0, memcmp(&x.addr, &y.addr, x.addrlen)) << where;
        EXPECT_EQ(x.mode, y.mode) << where;
        ExpectSameLimits(x.limits, y.limits, where);
        ExpectSameTimeouts(x.timeouts, y.timeouts, where);
    }
    ExpectSameTimeouts(a->timeouts, b->timeouts, "global");
    ExpectSameLimits(a->limits, b->limits, "global");
    EXPECT_TRUE(SameStr(a->http.server_header, b->http.server_header));
    EXPECT_TRUE(SameStr(a->log.access, b->log.access));
    EXPECT_EQ(a->log.level, b->log.level);
}

// print -> load -> print gives the same text and the same config.
inline void ExpectRoundTrip(const sl_config *cfg)
{
    ASSERT_NE(cfg, nullptr);
    std::string first = Print(cfg);
    Load again(std::vector<Source>{{"printed.yaml", first}});
    ASSERT_TRUE(again.ok()) << again.errors() << "\n" << first;
    EXPECT_EQ(first, Print(again.cfg()));
    ExpectSameConfig(cfg, again.cfg());
}

// A data file of this test: under $TEST_SRCDIR/<workspace>/ with Bazel,
// else relative to the working directory (the workspace root).
inline std::string Runfile(const std::string &rel)
{
    const char *srcdir = getenv("TEST_SRCDIR");
    const char *ws = getenv("TEST_WORKSPACE");
    if (srcdir == nullptr)
        return rel;
    return std::string(srcdir) + "/" + (ws ? ws : "saltare") + "/" + rel;
}

inline bool ReadFile(const std::string &path, std::string *out)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return false;
    std::stringstream ss;
    ss << f.rdbuf();
    *out = ss.str();
    return true;
}

} // namespace sltest

#endif
