// Buffer pools: reuse, release to the kernel, retention limits.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "server/pool.h"

namespace
{

class Pool : public ::testing::Test
{
  protected:
    void TearDown() override
    {
        sl_pool_release(&p);
    }
    uint64_t now = 1000;
    sl_pool p{};
};

TEST_F(Pool, RoundsTheSizeUpToWholePages)
{
    ASSERT_EQ(sl_pool_init(&p, 5000, 4, &now), 0);
    EXPECT_EQ(p.size % 4096, 0u);
    EXPECT_GE(p.size, 5000u);
}

TEST_F(Pool, BuffersAreWritableOverTheirWholeSize)
{
    ASSERT_EQ(sl_pool_init(&p, 4096, 4, &now), 0);
    char *b = static_cast<char *>(sl_pool_get(&p));
    ASSERT_NE(b, nullptr);
    memset(b, 0xab, p.size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 4096, 0u);
    sl_pool_put(&p, b);
}

TEST_F(Pool, ReusesTheMostRecentlyReturnedBuffer)
{
    ASSERT_EQ(sl_pool_init(&p, 4096, 8, &now), 0);
    void *a = sl_pool_get(&p);
    void *b = sl_pool_get(&p);
    EXPECT_EQ(p.outstanding, 2u);
    sl_pool_put(&p, a);
    sl_pool_put(&p, b);
    EXPECT_EQ(p.outstanding, 0u);
    EXPECT_EQ(p.nfree, 2u);
    EXPECT_EQ(sl_pool_get(&p), b); /* LIFO: the hot one first */
    EXPECT_EQ(sl_pool_get(&p), a);
    EXPECT_EQ(p.nfree, 0u);
    sl_pool_put(&p, a);
    sl_pool_put(&p, b);
}

TEST_F(Pool, KeepsAtMostMaxFreeBuffers)
{
    ASSERT_EQ(sl_pool_init(&p, 4096, 3, &now), 0);
    std::vector<void *> bufs;
    for (int i = 0; i < 10; i++)
        bufs.push_back(sl_pool_get(&p));
    for (void *b : bufs)
        sl_pool_put(&p, b);
    EXPECT_EQ(p.nfree, 3u);
    EXPECT_EQ(p.outstanding, 0u);
}

TEST_F(Pool, TrimReleasesOnlyBuffersIdleLongEnough)
{
    ASSERT_EQ(sl_pool_init(&p, 4096, 8, &now), 0);
    void *old1 = sl_pool_get(&p);
    void *old2 = sl_pool_get(&p);
    void *fresh = sl_pool_get(&p);
    sl_pool_put(&p, old1);
    sl_pool_put(&p, old2);
    now += 4000;
    sl_pool_put(&p, fresh);
    now += 2000; /* old ones idle 6 s, fresh one 2 s */
    EXPECT_EQ(sl_pool_trim(&p, 5000), 2u);
    EXPECT_EQ(p.nfree, 1u);
    EXPECT_EQ(sl_pool_get(&p), fresh);
    sl_pool_put(&p, fresh);
    now += 5000;
    EXPECT_EQ(sl_pool_trim(&p, 5000), 1u);
    EXPECT_EQ(p.nfree, 0u);
}

TEST_F(Pool, ZeroMaxFreeKeepsNothing)
{
    ASSERT_EQ(sl_pool_init(&p, 4096, 0, &now), 0);
    void *a = sl_pool_get(&p);
    ASSERT_NE(a, nullptr);
    sl_pool_put(&p, a);
    EXPECT_EQ(p.nfree, 0u);
}

} // namespace
