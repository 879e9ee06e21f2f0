// The per-client table behind limits.rate, limits.concurrency and
// limits.max_connections_per_ip (server/client_table.h).
#include <gtest/gtest.h>

#include <cstring>

#include "server/client_table.h"

namespace
{

struct Addr {
    unsigned char b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0};
    explicit Addr(int last)
    {
        b[15] = (unsigned char)last;
    }
};

const int kScopeA = 0, kScopeB = 0;

struct Table {
    sl_client_table *t;
    explicit Table(uint32_t slots) : t(sl_client_table_new(slots)) {}
    ~Table()
    {
        sl_client_table_free(t);
    }
};

TEST(ClientTable, BucketAllowsTheBurstThenSaysHowLongToWait)
{
    Table tb(16);
    sl_rate rate = {2, 3}; // 2 a second, 3 at once
    uint32_t id = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    ASSERT_NE(0u, id);
    for (int i = 0; i < 3; i++)
        EXPECT_EQ(0u, sl_client_take(tb.t, id, &rate, 1000)) << i;
    EXPECT_EQ(500u, sl_client_take(tb.t, id, &rate, 1000)); // one token every 500 ms
    EXPECT_EQ(250u, sl_client_take(tb.t, id, &rate, 1250));
    EXPECT_EQ(0u, sl_client_take(tb.t, id, &rate, 1500));
    EXPECT_EQ(500u, sl_client_take(tb.t, id, &rate, 1500));
    // A long pause refills to the burst, never beyond it.
    for (int i = 0; i < 3; i++)
        EXPECT_EQ(0u, sl_client_take(tb.t, id, &rate, 100000)) << i;
    EXPECT_NE(0u, sl_client_take(tb.t, id, &rate, 100000));
}

TEST(ClientTable, BurstZeroMeansPerSec)
{
    Table tb(16);
    sl_rate rate = {5, 0};
    uint32_t id = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    for (int i = 0; i < 5; i++)
        EXPECT_EQ(0u, sl_client_take(tb.t, id, &rate, 7)) << i;
    EXPECT_EQ(200u, sl_client_take(tb.t, id, &rate, 7));
}

TEST(ClientTable, AddressesAndScopesHaveEntriesOfTheirOwn)
{
    Table tb(16);
    uint32_t a = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    EXPECT_EQ(a, sl_client_get(tb.t, Addr(1).b, &kScopeA));
    EXPECT_NE(a, sl_client_get(tb.t, Addr(2).b, &kScopeA));
    EXPECT_NE(a, sl_client_get(tb.t, Addr(1).b, &kScopeB));
    EXPECT_EQ(3u, sl_client_table_used(tb.t));
}

TEST(ClientTable, HoldStopsAtTheCapAndPutGivesBack)
{
    Table tb(16);
    uint32_t id = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    EXPECT_TRUE(sl_client_hold(tb.t, id, SL_CLIENT_CONNS, 2));
    EXPECT_TRUE(sl_client_hold(tb.t, id, SL_CLIENT_CONNS, 2));
    EXPECT_FALSE(sl_client_hold(tb.t, id, SL_CLIENT_CONNS, 2));
    EXPECT_TRUE(sl_client_hold(tb.t, id, SL_CLIENT_INFLIGHT, 1)); // counted apart
    sl_client_put(tb.t, id, SL_CLIENT_CONNS);
    EXPECT_TRUE(sl_client_hold(tb.t, id, SL_CLIENT_CONNS, 2));
}

TEST(ClientTable, FullTableForgetsTheLeastRecentlyUsedIdleClient)
{
    Table tb(4);
    sl_rate rate = {1, 1};
    uint32_t first = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    EXPECT_EQ(0u, sl_client_take(tb.t, first, &rate, 10));
    EXPECT_NE(0u, sl_client_take(tb.t, first, &rate, 10)); // empty now
    for (int i = 2; i <= 4; i++)
        sl_client_get(tb.t, Addr(i).b, &kScopeA);
    sl_client_get(tb.t, Addr(2).b, &kScopeA); // 2 is recent again; 1 is the oldest
    uint32_t fifth = sl_client_get(tb.t, Addr(5).b, &kScopeA);
    EXPECT_EQ(first, fifth); // its slot was reused
    EXPECT_EQ(4u, sl_client_table_used(tb.t));
    // Client 1 comes back as new: a full bucket.
    uint32_t again = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    EXPECT_EQ(0u, sl_client_take(tb.t, again, &rate, 10));
    // ...and it took the slot of 3, now the oldest; 2 is still known.
    EXPECT_EQ(4u, sl_client_table_used(tb.t));
}

TEST(ClientTable, ClientsHoldingSomethingAreNeverEvicted)
{
    Table tb(2);
    uint32_t a = sl_client_get(tb.t, Addr(1).b, &kScopeA);
    uint32_t b = sl_client_get(tb.t, Addr(2).b, &kScopeA);
    ASSERT_TRUE(sl_client_hold(tb.t, a, SL_CLIENT_CONNS, 10));
    ASSERT_TRUE(sl_client_hold(tb.t, b, SL_CLIENT_INFLIGHT, 10));
    EXPECT_EQ(0u, sl_client_get(tb.t, Addr(3).b, &kScopeA)); // uncounted
    EXPECT_EQ(1u, sl_client_table_untracked(tb.t));
    // The held counts survived the attempt.
    EXPECT_EQ(a, sl_client_get(tb.t, Addr(1).b, &kScopeA));
    EXPECT_FALSE(sl_client_hold(tb.t, a, SL_CLIENT_CONNS, 1));
    sl_client_put(tb.t, b, SL_CLIENT_INFLIGHT);
    EXPECT_EQ(b, sl_client_get(tb.t, Addr(3).b, &kScopeA)); // b was free to go
}

TEST(ClientTable, ManyClientsStayWithinTheSlots)
{
    Table tb(SL_CLIENT_TABLE_SLOTS);
    sl_rate rate = {1, 1};
    for (int i = 0; i < 3 * (int)SL_CLIENT_TABLE_SLOTS; i++) {
        Addr a(0);
        std::memcpy(a.b + 12, &i, sizeof(i));
        uint32_t id = sl_client_get(tb.t, a.b, &kScopeA);
        ASSERT_NE(0u, id);
        ASSERT_EQ(0u, sl_client_take(tb.t, id, &rate, 1));
    }
    EXPECT_EQ(SL_CLIENT_TABLE_SLOTS, sl_client_table_used(tb.t));
    EXPECT_EQ(0u, sl_client_table_untracked(tb.t));
}

} // namespace
