// The table-driven corpus under tests/config/ (see its README.md), and the
// check that docs/config.md is what the schema generates.
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>

#include <algorithm>

#include "tests/config_testing.h"

namespace
{

using sltest::Load;
using sltest::ReadFile;
using sltest::Runfile;
using sltest::Source;

struct Case {
    std::string dir;  // "good" or "bad"
    std::string stem; // "minimal"
};

void PrintTo(const Case &c, std::ostream *os)
{
    *os << c.dir << "/" << c.stem << ".yaml";
}

std::vector<Case> ListCases(const std::string &dir)
{
    std::vector<Case> cases;
    DIR *d = opendir(Runfile("tests/config/" + dir).c_str());
    if (d == nullptr)
        return cases;
    while (dirent *e = readdir(d)) {
        std::string name = e->d_name;
        if (name.size() > 5 && name.compare(name.size() - 5, 5, ".yaml") == 0)
            cases.push_back({dir, name.substr(0, name.size() - 5)});
    }
    closedir(d);
    std::sort(cases.begin(), cases.end(),
              [](const Case &a, const Case &b) { return a.stem < b.stem; });
    return cases;
}

// "#! env NAME=value" and "#! set key=value" lines at the top of a case.
void ParseDirectives(const std::string &text, std::map<std::string, std::string> *env,
                     std::vector<std::string> *sets)
{
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line) && line.rfind("#", 0) == 0) {
        if (line.rfind("#! env ", 0) == 0) {
            std::string kv = line.substr(7);
            size_t eq = kv.find('=');
            (*env)[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
        } else if (line.rfind("#! set ", 0) == 0) {
            sets->push_back(line.substr(7));
        }
    }
}

// With SL_CORPUS_WRITE set, a missing expected file is written next to the
// case in the source tree (through the runfiles symlink) for review.
void WriteExpected(const std::string &yaml_runfile, const std::string &ext, const std::string &text)
{
    char real[PATH_MAX];
    ASSERT_NE(realpath(yaml_runfile.c_str(), real), nullptr);
    std::string path(real);
    path = path.substr(0, path.size() - 5) + ext;
    std::ofstream(path) << text;
    FAIL() << "wrote " << path << ": review it, then rerun";
}

class ConfigCorpus : public testing::TestWithParam<Case>
{
};

TEST_P(ConfigCorpus, CompilesToTheExpectedOutput)
{
    const Case &c = GetParam();
    std::string base = Runfile("tests/config/" + c.dir + "/" + c.stem), text, expected;
    ASSERT_TRUE(ReadFile(base + ".yaml", &text)) << base;
    std::map<std::string, std::string> env;
    std::vector<std::string> sets;
    ParseDirectives(text, &env, &sets);

    Load load(std::vector<Source>{{c.stem + ".yaml", text}}, sets, env);
    bool good = c.dir == "good";
    std::string ext = good ? ".out" : ".err";
    std::string actual = good ? (load.ok() ? sltest::Print(load.cfg()) : "") : load.errors();
    if (good)
        ASSERT_TRUE(load.ok()) << load.errors();
    else
        ASSERT_FALSE(load.ok()) << "expected errors, got a config:\n" << sltest::Print(load.cfg());
    if (!ReadFile(base + ext, &expected)) {
        if (getenv("SL_CORPUS_WRITE"))
            return WriteExpected(base + ".yaml", ext, actual);
        FAIL() << "missing " << base << ext << " (see tests/config/README.md)\n" << actual;
    }
    EXPECT_EQ(expected, actual);
    if (good)
        sltest::ExpectRoundTrip(load.cfg());
    // Warnings: NAME.warn holds them, one per line; no file = none expected.
    std::string warned;
    if (ReadFile(base + ".warn", &warned) || load.warnings().empty())
        EXPECT_EQ(warned, load.warnings());
    else if (getenv("SL_CORPUS_WRITE"))
        WriteExpected(base + ".yaml", ".warn", load.warnings());
    else
        FAIL() << "unexpected warnings (add " << base << ".warn):\n" << load.warnings();
}

std::string CaseName(const testing::TestParamInfo<Case> &info)
{
    std::string name = info.param.dir + "_" + info.param.stem;
    std::replace_if(
        name.begin(), name.end(), [](char ch) { return !isalnum((unsigned char)ch); }, '_');
    return name;
}

INSTANTIATE_TEST_SUITE_P(Good, ConfigCorpus, testing::ValuesIn(ListCases("good")), CaseName);
INSTANTIATE_TEST_SUITE_P(Bad, ConfigCorpus, testing::ValuesIn(ListCases("bad")), CaseName);

TEST(ConfigCorpusLayout, HasCasesOfBothKinds)
{
    EXPECT_GE(ListCases("good").size(), 5u) << "runfiles: " << Runfile("tests/config");
    EXPECT_GE(ListCases("bad").size(), 20u);
}

// Every expected file belongs to a case (a renamed case leaves none behind).
TEST(ConfigCorpusLayout, HasNoOrphanExpectedFiles)
{
    for (std::string dir : {"good", "bad"}) {
        std::string ext = dir == "good" ? ".out" : ".err";
        DIR *d = opendir(Runfile("tests/config/" + dir).c_str());
        ASSERT_NE(d, nullptr);
        while (dirent *e = readdir(d)) {
            std::string name = e->d_name, yaml;
            if (name.size() <= ext.size() ||
                name.compare(name.size() - ext.size(), ext.size(), ext) != 0)
                continue;
            yaml = name.substr(0, name.size() - ext.size()) + ".yaml";
            std::string unused;
            EXPECT_TRUE(ReadFile(Runfile("tests/config/" + dir + "/" + yaml), &unused))
                << dir << "/" << name << " has no " << yaml;
        }
        closedir(d);
    }
}

TEST(ConfigDocs, MatchTheSchema)
{
    std::string committed, generated = sltest::Capture([](FILE *f) { sl_cfg_print_docs(f); });
    ASSERT_TRUE(ReadFile(Runfile("docs/config.md"), &committed)) << Runfile("docs/config.md");
    if (const char *out = getenv("SL_WRITE_DOCS"))
        std::ofstream(out) << generated;
    EXPECT_TRUE(committed == generated)
        << "docs/config.md is stale. Regenerate it with\n"
           "    bazel build //:saltare && bazel-bin/saltare --docs > docs/config.md\n"
           "or, without the binary,\n"
           "    bazel test //tests:config_test --test_filter=ConfigDocs.* "
           "--test_env=SL_WRITE_DOCS=$PWD/docs/config.md --spawn_strategy=standalone";
}

} // namespace
